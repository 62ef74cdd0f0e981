"""Hostile callbacks: the receiver answers every one (400/401/403/413, 503 for a store outage) and never
raises; signatures are compared as bytes; timestamps are ASCII digits; empty secrets are refused up front.

Each test here names a bug the receiver had: it raised (and the ASGI app answered 500 with a traceback) on
a non-ASCII signature, a timestamp of Unicode digits, a signed body that is not a JSON object, or a store
error, and it accepted an empty secret.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

import httpx
import pytest

from delivery_sdk import (
    BaseChannel,
    ChannelKind,
    DeliveryClient,
    Dispatch,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    StoreError,
    ValidationError,
    VirtualClock,
)
from delivery_sdk.callbacks import (
    MAX_HEADER_FIELDS,
    CallbackReceiver,
    CallbackRejected,
    asgi_app,
    check_timestamp,
    hmac_sha256_hex,
    lower_headers,
    require_secret,
    sign_callback,
    signature_matches,
    verify_hmac_sha256,
    verify_signed_callback,
)
from delivery_sdk.testing import channels_plugin, make_party, make_request

SECRET = "hostile-test-secret"
EVENT_SECRET = "event-platform-secret"


class PushChannel(BaseChannel):
    """Pushes ``{"events": [{dispatch_id, id, type, at}]}``, verified by the receiver's generic scheme."""

    def __init__(self, name: str = "push-sms") -> None:
        self.name = name
        self.kind = ChannelKind.SMS
        self.sent: list[str] = []

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.sent.append(dispatch.dispatch_id)
        return SendResult(accepted=True, provider_ref=f"ref-{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=dispatch.dispatch_id in self.sent)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        events = json.loads(body)["events"]  # deliberately careless: the receiver must cope
        return [
            Receipt(
                dispatch_id=e["dispatch_id"],
                kind=ReceiptKind(e["type"]),
                at=datetime.fromisoformat(e["at"]),
                provider_event_id=e["id"],
            )
            for e in events
        ]


class EventIdChannel(PushChannel):
    """A provider whose replay key is the event id inside the signed body (the e-service platform's shape):
    its verify_callback reads the body once the signature holds, and is careless about its shape."""

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        h = lower_headers(headers)
        verify_hmac_sha256(EVENT_SECRET, h.get("x-sig"), h.get("x-ts", ""), body)
        check_timestamp(h.get("x-ts"), now)
        return str(json.loads(body)["events"][0]["id"])


class World:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.push = PushChannel()
        self.events_channel = EventIdChannel("event-sms")
        self.client = DeliveryClient(
            ":memory:",
            plugins=[channels_plugin(self.push, self.events_channel)],
            clock=self.clock,
            load_entry_points=False,
        )
        self.task_id = self.client.submit(make_request(make_party(mobile="13912345678"), channels=[ChannelKind.SMS]))
        self.client.run_until_idle(until=self.clock.now())
        [self.dispatch_id] = self.push.sent
        self.receiver = CallbackReceiver(self.client, secrets={"push-sms": SECRET})

    def report(self, event_id: str = "ev-1") -> bytes:
        event = {
            "dispatch_id": self.dispatch_id,
            "id": event_id,
            "type": "delivered",
            "at": self.clock.now().isoformat(),
        }
        return json.dumps({"events": [event]}).encode()

    def stamp(self) -> str:
        return str(int(self.clock.now().timestamp()))

    def events(self) -> int:
        return len(self.client.timeline(self.task_id))


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.client.close()


def signed(secret: str, stamp: str, nonce: str, body: bytes) -> dict[str, str]:
    """The generic scheme's headers with whatever timestamp text we like (sign_callback takes numbers)."""
    return {
        "X-Delivery-Timestamp": stamp,
        "X-Delivery-Nonce": nonce,
        "X-Delivery-Signature": hmac_sha256_hex(secret, stamp, nonce, body),
    }


# -- signatures are bytes --------------------------------------------------------------------------


@pytest.mark.parametrize("signature", ["签名不对", "é" * 64, "\u0661" * 64, "\ud800abc"])
def test_a_non_ascii_signature_is_forged_not_an_exception(world: World, signature: str) -> None:
    body = world.report()
    headers = sign_callback(SECRET, body, timestamp=world.clock.now())
    headers["X-Delivery-Signature"] = signature
    before = world.events()
    response = world.receiver.handle("push-sms", headers, body)
    assert (response.status, response.reason) == (401, "forged")
    assert world.events() == before
    with pytest.raises(CallbackRejected) as info:
        verify_hmac_sha256(SECRET, signature, "1", "n", body)
    assert info.value.reason == "forged"


def test_signature_matches_compares_bytes_and_never_raises() -> None:
    expected = hmac_sha256_hex("k", "x")
    assert signature_matches(expected, expected.upper())
    assert signature_matches(expected, f"  {expected}\t")
    assert signature_matches(expected.encode(), expected.encode())
    for given in (None, "", "é", "\ud800", expected + "é", "0" * 10_000, b"\xff" * 64):
        assert not signature_matches(expected, given)


def test_a_signed_field_that_is_not_text_is_forged(world: World) -> None:
    body = world.report()
    headers = sign_callback(SECRET, body, timestamp=world.clock.now())
    headers["X-Delivery-Timestamp"] = "\ud800"  # a lone surrogate cannot be encoded to sign
    response = world.receiver.handle("push-sms", headers, body)
    assert (response.status, response.reason) == (401, "forged")


# -- timestamps are ASCII digits -------------------------------------------------------------------


@pytest.mark.parametrize("digits", ["arabic-indic", "superscript", "fullwidth"])
def test_a_timestamp_of_unicode_digits_is_refused(world: World, digits: str) -> None:
    ascii_stamp = world.stamp()
    stamp = {
        "arabic-indic": ascii_stamp.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        "superscript": "²" + ascii_stamp[1:],
        "fullwidth": ascii_stamp.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    }[digits]
    assert stamp.isdigit()  # what the old check accepted
    body = world.report()
    before = world.events()
    response = world.receiver.handle("push-sms", signed(SECRET, stamp, "nonce-1", body), body)
    assert (response.status, response.reason) == (401, "forged")
    assert world.events() == before
    with pytest.raises(CallbackRejected, match="unreadable timestamp"):
        check_timestamp(stamp, world.clock.now())


def test_check_timestamp_bounds_its_input() -> None:
    now = datetime.fromtimestamp(1_800_000_000).astimezone()
    assert check_timestamp(" 1800000000 ", now) == now
    assert check_timestamp("1800000000000", now) == now  # milliseconds
    for bad in (None, "", " ", "-1800000000", "+1800000000", "1800000000.0", "1" * 17, "9" * 5000, "0x1f"):
        with pytest.raises(CallbackRejected) as info:
            check_timestamp(bad, now)
        assert info.value.reason == "forged"
    with pytest.raises(CallbackRejected) as info:
        check_timestamp("9" * 16, now)
    assert info.value.reason == "stale"


# -- a signed body of the wrong shape --------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"[]", b"[1, 2]", b'"text"', b"42", b"null", b"{}", b'{"events": 5}', b"[" * 5000])
def test_a_signed_body_that_is_not_the_expected_object_is_malformed(world: World, payload: bytes) -> None:
    before = world.events()
    # the generic scheme: parse_callback trips over it
    response = world.receiver.handle("push-sms", sign_callback(SECRET, payload, timestamp=world.clock.now()), payload)
    assert (response.status, response.reason) == (400, "malformed")
    # a provider scheme whose verify_callback reads the signed body for its replay key
    stamp = world.stamp()
    headers = {"X-Ts": stamp, "X-Sig": hmac_sha256_hex(EVENT_SECRET, stamp, payload)}
    response = world.receiver.handle("event-sms", headers, payload)
    assert response.status in (400, 401)
    assert response.body in ({"error": "malformed"}, {"error": "rejected"})
    assert world.events() == before


def test_verify_callback_raising_malformed_receipt_is_answered_400(world: World) -> None:
    class Strict(EventIdChannel):
        def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
            raise MalformedReceipt("no event id")

    receiver = CallbackReceiver(world.client)
    world.client.engine.host.channels(Strict("strict-sms"))
    response = receiver.handle("strict-sms", {}, b"{}")
    assert (response.status, response.reason) == (400, "malformed")


# -- empty secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", b"", "   ", [""], ["good", ""], [], [b"\t"]])
def test_an_empty_secret_is_refused_at_construction(world: World, secret: object) -> None:
    with pytest.raises(ValidationError, match="push-sms") as info:
        CallbackReceiver(world.client, secrets={"push-sms": secret})  # type: ignore[dict-item]
    assert isinstance(info.value, ValueError)
    assert "secret" in str(info.value)


def test_require_secret_says_what_and_how() -> None:
    assert require_secret("k", "x") == "k"
    with pytest.raises(ValidationError, match="DELIVERY_SDK_X_SECRET is empty: set it"):
        require_secret("", "DELIVERY_SDK_X_SECRET")
    with pytest.raises(ValidationError, match="not NoneType"):
        require_secret(None, "callback_secret")


def test_the_empty_key_never_verifies() -> None:
    body = b"{}"
    headers = sign_callback(b"", body, timestamp=1_800_000_000, nonce="n1")
    now = datetime.fromtimestamp(1_800_000_000).astimezone()
    with pytest.raises(CallbackRejected) as info:
        verify_hmac_sha256("", headers["X-Delivery-Signature"], "1800000000", "n1", body)
    assert info.value.reason == "unsigned"
    with pytest.raises(ValueError, match="empty"):
        verify_signed_callback("", headers, body, now)


# -- whatever the adapter or the store raises ------------------------------------------------------


def test_verify_callback_raising_anything_is_refused_not_raised(world: World, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(EventIdChannel):
        def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
            raise KeyError("13912345678")  # an exception quoting the payload

    world.client.engine.host.channels(Broken("broken-sms"))
    response = CallbackReceiver(world.client).handle("broken-sms", {}, b"{}")
    assert (response.status, response.reason) == (401, "forged")
    assert "KeyError" in caplog.text
    assert "13912345678" not in caplog.text


def test_a_store_error_while_ingesting_answers_503_and_frees_the_replay_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(receipt: Receipt, *, channel: str | None = None) -> object:
        raise StoreError("database is locked")

    body = world.report()
    headers = sign_callback(SECRET, body, timestamp=world.clock.now())
    with monkeypatch.context() as patch:
        patch.setattr(world.client.engine, "ingest", down)
        response = world.receiver.handle("push-sms", headers, body)
    assert (response.status, response.reason, response.body) == (503, "store_unavailable", {"error": "unavailable"})
    assert world.receiver.handle("push-sms", headers, body).status == 200  # the provider's retry gets through


def test_a_replay_guard_outage_answers_503(world: World) -> None:
    class DownGuard:
        def claim(self, key: str, now: datetime) -> bool:
            raise ConnectionError("redis is down")

        def release(self, key: str) -> None:
            raise ConnectionError("redis is down")

    receiver = CallbackReceiver(world.client, secrets={"push-sms": SECRET}, replay=DownGuard())
    body = world.report()
    response = receiver.handle("push-sms", sign_callback(SECRET, body, timestamp=world.clock.now()), body)
    assert (response.status, response.reason) == (503, "replay_guard_unavailable")


@pytest.mark.parametrize(
    ("headers", "body", "channel", "status"),
    [
        ({f"x-h{i}": "1" for i in range(MAX_HEADER_FIELDS + 1)}, b"{}", "push-sms", 400),
        ({"x-big": "a" * 70_000}, b"{}", "push-sms", 400),
        ({"x-n": 5}, b"{}", "push-sms", 400),
        ("not a mapping", b"{}", "push-sms", 400),
        ({}, "not bytes", "push-sms", 400),
        ({}, b"{}", 42, 403),
        ({}, b"{}", "渠道", 403),
        ({}, b"{}", "", 403),
    ],
)
def test_odd_arguments_are_answered(world: World, headers: object, body: object, channel: object, status: int) -> None:
    response = world.receiver.handle(channel, headers, body)  # type: ignore[arg-type]
    assert response.status == status


# -- over ASGI: no 500, no traceback ---------------------------------------------------------------


def asgi_post(world: World, path: str, body: bytes, headers: Mapping[str, str | bytes]) -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi_app(world.receiver))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://callbacks.test") as client:
            return await client.post(path, content=body, headers=dict(headers))

    return asyncio.run(go())


def test_asgi_answers_hostile_requests_without_500(world: World) -> None:
    body = world.report()
    good = sign_callback(SECRET, body, timestamp=world.clock.now())
    latin = {**good, "X-Delivery-Signature": "é".encode() * 64}  # UTF-8 on the wire: not ASCII
    assert asgi_post(world, "/callbacks/push-sms", body, latin).status_code == 401
    # a content-length of Unicode digits (the old check took "²" for a number and int() raised)
    response = asgi_post(world, "/callbacks/push-sms", body, {**good, "Content-Length": "²".encode()})
    assert response.status_code == 400
    assert asgi_post(world, "/callbacks/push-sms", body, {**good, "Content-Length": "9" * 5000}).status_code == 413
    payload = b"[1]"
    signed_list = sign_callback(SECRET, payload, timestamp=world.clock.now())
    assert asgi_post(world, "/callbacks/push-sms", payload, signed_list).status_code == 400
    assert asgi_post(world, "/callbacks/push-sms", body, good).status_code == 200
