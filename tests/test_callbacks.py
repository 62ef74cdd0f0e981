"""The callback receiver and its ASGI app: verify, refuse replays, ingest once; over a real socket too."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelKind,
    DeliveryClient,
    Dispatch,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TaskState,
    VirtualClock,
)
from delivery_sdk.callbacks import (
    MAX_QUERY_FIELDS,
    CallbackReceiver,
    CallbackResponse,
    ReplayCache,
    asgi_app,
    check_timestamp,
    hmac_sha256_hex,
    lower_headers,
    parse_query,
    sign_callback,
    takes_query,
    verify_signed_callback,
)
from delivery_sdk.testing import channels_plugin, make_party, make_request

SECRET = "s3cret-for-the-push"
PHONE = "13912345678"


class PushChannel(BaseChannel):
    """A provider that accepts every send and pushes JSON reports: {"events": [{dispatch_id, id, type, at}]}."""

    def __init__(self, name: str = "push-sms", kind: ChannelKind = ChannelKind.SMS) -> None:
        self.name = name
        self.kind = kind
        self.sent: list[str] = []

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.sent.append(dispatch.dispatch_id)
        return SendResult(accepted=True, provider_ref=f"ref-{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=dispatch.dispatch_id in self.sent)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        try:
            events = json.loads(body)["events"]
            return [
                Receipt(
                    dispatch_id=e["dispatch_id"],
                    kind=ReceiptKind(e["type"]),
                    at=datetime.fromisoformat(e["at"]),
                    provider_event_id=e["id"],
                )
                for e in events
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedReceipt(f"unreadable push ({type(exc).__name__})") from exc


class SignedPushChannel(PushChannel):
    """The same provider with its own scheme: X-Prov-Sig = HMAC(secret, ts \\n body), X-Prov-Msg is the key."""

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        h = lower_headers(headers)
        from delivery_sdk.callbacks import verify_hmac_sha256

        verify_hmac_sha256("provider-key", h.get("x-prov-sig"), h.get("x-prov-ts", ""), body)
        check_timestamp(h.get("x-prov-ts"), now)
        return h.get("x-prov-msg") or ""


class World:
    """A client with the push channels, one task whose SMS was sent, and a receiver."""

    def __init__(self, *, max_body: int = 1 << 20) -> None:
        self.clock = VirtualClock()
        self.push = PushChannel()
        self.signed = SignedPushChannel("signed-sms", ChannelKind.WECHAT)
        self.client = DeliveryClient(
            ":memory:",
            plugins=[channels_plugin(self.push, self.signed)],
            clock=self.clock,
            load_entry_points=False,
        )
        self.task_id = self.client.submit(make_request(make_party(mobile=PHONE), channels=[ChannelKind.SMS]))
        self.client.run_until_idle(until=self.clock.now())
        [self.dispatch_id] = self.push.sent
        self.receiver = CallbackReceiver(self.client, secrets={"push-sms": SECRET}, max_body=max_body)

    def report(self, event_id: str = "ev-1", kind: str = "delivered", dispatch_id: str | None = None) -> bytes:
        event = {
            "dispatch_id": dispatch_id or self.dispatch_id,
            "id": event_id,
            "type": kind,
            "at": self.clock.now().isoformat(),
        }
        return json.dumps({"events": [event]}).encode()

    def signed_headers(self, body: bytes, *, secret: str = SECRET, nonce: str | None = None) -> dict[str, str]:
        return sign_callback(secret, body, timestamp=self.clock.now(), nonce=nonce)

    def events(self) -> list[str]:
        return [e.event.TYPE for e in self.client.timeline(self.task_id)]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_valid_callback_is_ingested_and_the_engine_serves(world: World) -> None:
    body = world.report()
    response = world.receiver.handle("push-sms", world.signed_headers(body), body)
    assert response == CallbackResponse(
        status=200, body={"ok": True, "receipts": 1, "recorded": 1, "duplicate": 0, "late": 0, "unknown_dispatch": 0}
    )
    assert world.events()[-1] == "dispatch.delivered"
    world.client.run_until_idle()
    assert world.client.status(world.task_id).state is TaskState.FILED


def test_forged_signature_is_refused_and_nothing_recorded(world: World) -> None:
    body = world.report()
    before = world.events()
    for headers in (
        world.signed_headers(body, secret="not-the-secret"),
        {**world.signed_headers(body), "X-Delivery-Signature": ""},
        {k: v for k, v in world.signed_headers(body).items() if k != "X-Delivery-Nonce"},
        world.signed_headers(world.report(kind="failed")),  # a signature over another body
    ):
        response = world.receiver.handle("push-sms", headers, body)
        assert (response.status, response.reason, response.body) == (401, "forged", {"error": "rejected"})
    assert world.events() == before


def test_stale_and_future_timestamps_are_refused(world: World) -> None:
    body = world.report()
    old = sign_callback(SECRET, body, timestamp=world.clock.now() - timedelta(minutes=6))
    ahead = sign_callback(SECRET, body, timestamp=world.clock.now() + timedelta(minutes=6))
    within = sign_callback(SECRET, body, timestamp=world.clock.now() - timedelta(minutes=4))
    assert world.receiver.handle("push-sms", old, body).reason == "stale"
    assert world.receiver.handle("push-sms", ahead, body).reason == "stale"
    assert world.receiver.handle("push-sms", within, body).status == 200


def test_replayed_callback_is_refused_within_the_window_and_recorded_once_after(world: World) -> None:
    body = world.report()
    headers = world.signed_headers(body)
    assert world.receiver.handle("push-sms", headers, body).status == 200
    replay = world.receiver.handle("push-sms", headers, body)
    assert (replay.status, replay.reason) == (401, "replayed")
    # after the window layer 1 refuses it as stale; a fresh receiver (another worker, an empty cache) with a
    # re-signed copy gets through layers 1 and 2, and the store's receipt keys record nothing twice
    world.clock.advance(timedelta(minutes=6))
    assert world.receiver.handle("push-sms", headers, body).reason == "stale"
    other_worker = CallbackReceiver(world.client, secrets={"push-sms": SECRET})
    again = other_worker.handle("push-sms", world.signed_headers(body), body)
    assert again.body["duplicate"] == 1
    assert again.body["recorded"] == 0
    assert world.events().count("dispatch.delivered") == 1


def test_unsigned_channel_is_refused(world: World) -> None:
    receiver = CallbackReceiver(world.client)  # no secret for push-sms, and it has no verify_callback
    body = world.report()
    response = receiver.handle("push-sms", world.signed_headers(body), body)
    assert (response.status, response.reason) == (401, "unsigned")


def test_unknown_channel_is_refused(world: World) -> None:
    body = world.report()
    for name in ("nope", "../etc", "x" * 101, ""):
        response = world.receiver.handle(name, world.signed_headers(body), body)
        assert (response.status, response.reason, response.body) == (403, "unknown_channel", {"error": "rejected"})


def test_malformed_payload_answers_400_and_frees_the_replay_key(world: World) -> None:
    for body in (b"not json", b'{"events": [{"dispatch_id": "x"}]}', b'{"events": 3}'):
        headers = world.signed_headers(body, nonce="n-1")
        response = world.receiver.handle("push-sms", headers, body)
        assert (response.status, response.reason, response.body) == (400, "malformed", {"error": "malformed"})
    assert len(world.receiver.replay) == 0  # type: ignore[arg-type]


def test_duplicate_provider_event_is_recorded_once(world: World) -> None:
    body = world.report("ev-7")
    first = world.receiver.handle("push-sms", world.signed_headers(body), body)
    second = world.receiver.handle("push-sms", world.signed_headers(body), body)  # a retry, fresh nonce
    assert first.body["recorded"] == 1
    assert second.status == 200
    assert second.body["duplicate"] == 1
    assert second.body["recorded"] == 0
    assert world.events().count("dispatch.delivered") == 1


def test_unknown_dispatch_and_late_reports_are_counted(world: World) -> None:
    body = world.report("ev-x", dispatch_id="no-such-dispatch")
    response = world.receiver.handle("push-sms", world.signed_headers(body), body)
    assert response.body["unknown_dispatch"] == 1
    served = world.report("ev-1")
    world.receiver.handle("push-sms", world.signed_headers(served), served)
    world.client.run_until_idle()
    late = world.report("ev-2", kind="failed")
    response = world.receiver.handle("push-sms", world.signed_headers(late), late)
    assert response.body["late"] == 1


def test_body_size_limit() -> None:
    w = World(max_body=64)
    try:
        body = w.report()
        assert len(body) > 64
        response = w.receiver.handle("push-sms", w.signed_headers(body), body)
        assert (response.status, response.reason) == (413, "too_large")
    finally:
        w.close()


def test_adapter_verify_callback_takes_precedence_and_keys_replays(world: World) -> None:
    send = world.client.submit(
        make_request(make_party(mobile=PHONE, wechat="wx_openid_1"), channels=[ChannelKind.WECHAT])
    )
    world.client.run_until_idle(until=world.clock.now())
    [dispatch_id] = world.signed.sent
    body = world.report("wx-1", dispatch_id=dispatch_id)
    stamp = str(int(world.clock.now().timestamp()))
    headers = {"X-Prov-Ts": stamp, "X-Prov-Msg": "msg-1", "X-Prov-Sig": hmac_sha256_hex("provider-key", stamp, body)}
    receiver = CallbackReceiver(world.client, secrets={"signed-sms": "ignored: the adapter verifies"})
    assert receiver.handle("signed-sms", headers, body).body["recorded"] == 1
    assert receiver.handle("signed-sms", headers, body).reason == "replayed"
    forged = {**headers, "X-Prov-Msg": "msg-2", "X-Prov-Sig": "0" * 64}
    assert receiver.handle("signed-sms", forged, body).reason == "forged"
    no_key = {**headers, "X-Prov-Msg": ""}
    assert receiver.handle("signed-sms", no_key, body).reason == "forged"
    assert world.client.status(send).dispatches[0].delivered_at is not None


def test_secret_rotation_accepts_either_secret(world: World) -> None:
    receiver = CallbackReceiver(world.client, secrets={"push-sms": ["new-secret", SECRET]})
    body = world.report()
    assert receiver.handle("push-sms", world.signed_headers(body, secret=SECRET), body).status == 200
    assert receiver.handle("push-sms", world.signed_headers(body, secret="new-secret"), body).status == 200
    with pytest.raises(ValueError, match="non-empty"):
        CallbackReceiver(world.client, secrets={"push-sms": []})


def test_verify_signed_callback_returns_the_nonce() -> None:
    now = datetime.fromtimestamp(1_800_000_000).astimezone()
    headers = sign_callback(b"k", b"{}", timestamp=1_800_000_000, nonce="abc")
    assert verify_signed_callback("k", {k.upper(): v for k, v in headers.items()}, b"{}", now) == "abc"
    with pytest.raises(CallbackRejected) as info:
        verify_signed_callback("k", {**headers, "X-Delivery-Nonce": "bad nonce!"}, b"{}", now)
    assert info.value.reason == "forged"
    with pytest.raises(ValueError, match="nonce"):
        sign_callback("k", b"{}", timestamp=now, nonce="")


def test_replay_cache_is_bounded_and_expires() -> None:
    t0 = datetime.fromisoformat("2026-11-02T01:00:00+00:00")
    cache = ReplayCache(retention=timedelta(minutes=10), max_entries=2)
    assert cache.claim("a", t0)
    assert cache.claim("b", t0)
    assert cache.claim("c", t0)
    assert len(cache) == 2
    assert cache.claim("a", t0)  # evicted to stay bounded: claimable again (layer 3 still holds)
    assert not cache.claim("c", t0 + timedelta(minutes=9))
    assert cache.claim("c", t0 + timedelta(minutes=10))  # expired
    cache.release("c")
    assert cache.claim("c", t0 + timedelta(minutes=10))
    with pytest.raises(ValueError, match="max_entries"):
        ReplayCache(max_entries=0)


def test_receiver_refuses_what_is_not_a_client(world: World) -> None:
    with pytest.raises(TypeError, match="DeliveryClient"):
        CallbackReceiver(object())
    assert CallbackReceiver(world.client.engine).engine is world.client.engine


def test_rejection_logs_no_personal_data(world: World, caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"events": [{"dispatch_id": world.dispatch_id, "phone": PHONE}]}).encode()
    world.receiver.handle("push-sms", world.signed_headers(body, secret="wrong"), body)
    world.receiver.handle("push-sms", world.signed_headers(body), body)
    assert caplog.records
    assert all(PHONE not in r.getMessage() for r in caplog.records)


# -- ASGI ---------------------------------------------------------------------------------------------


def test_asgi_app_through_httpx_asgi_transport(world: World) -> None:
    app = asgi_app(world.receiver, prefix="/hooks/")

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://callbacks.test") as http:
            body = world.report()
            ok = await http.post("/hooks/push-sms", content=body, headers=world.signed_headers(body))
            assert ok.status_code == 200
            assert ok.json()["recorded"] == 1
            assert ok.headers["content-type"] == "application/json"
            forged = await http.post("/hooks/push-sms", content=body, headers=world.signed_headers(body, secret="x"))
            assert (forged.status_code, forged.json()) == (401, {"error": "rejected"})
            assert (await http.post("/hooks/nope", content=body)).status_code == 403
            assert (await http.post("/hooks/", content=body)).status_code == 404
            assert (await http.post("/hooks/a/b", content=body)).status_code == 404
            assert (await http.post("/elsewhere/push-sms", content=body)).status_code == 404
            wrong_method = await http.get("/hooks/push-sms")
            assert wrong_method.status_code == 405
            assert wrong_method.headers["allow"] == "POST"
            bad = b"{"
            assert (
                await http.post("/hooks/push-sms", content=bad, headers=world.signed_headers(bad))
            ).status_code == 400

    asyncio.run(scenario())


class Served:
    """uvicorn serving an ASGI app in a thread on 127.0.0.1 with an ephemeral port."""

    def __init__(self, app: object) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_asgi_app_over_a_real_socket_with_uvicorn(world: World) -> None:
    small = CallbackReceiver(world.client, secrets={"push-sms": SECRET}, max_body=2048)
    with Served(asgi_app(small)) as url, httpx.Client(base_url=url, timeout=5) as http:
        body = world.report("ev-socket")
        headers = world.signed_headers(body)
        ok = http.post("/callbacks/push-sms", content=body, headers=headers)
        assert ok.status_code == 200
        assert ok.json() == {
            "ok": True,
            "receipts": 1,
            "recorded": 1,
            "duplicate": 0,
            "late": 0,
            "unknown_dispatch": 0,
        }
        assert http.post("/callbacks/push-sms", content=body, headers=headers).status_code == 401  # replayed
        retry = http.post("/callbacks/push-sms", content=body, headers=world.signed_headers(body))
        assert retry.json()["duplicate"] == 1
        stale = sign_callback(SECRET, body, timestamp=world.clock.now() - timedelta(hours=1))
        assert http.post("/callbacks/push-sms", content=body, headers=stale).status_code == 401
        huge = b"x" * 4096
        assert http.post("/callbacks/push-sms", content=huge, headers=world.signed_headers(huge)).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
            for _ in range(8):
                yield b"y" * 512

        assert http.post("/callbacks/push-sms", content=chunks()).status_code == 413
    assert world.events().count("dispatch.delivered") == 1
    world.client.run_until_idle()
    assert world.client.status(world.task_id).state is TaskState.FILED


def test_asgi_app_mounted_under_a_root_path(world: World) -> None:
    """Mounted by a framework (Starlette's ``app.mount("/callbacks", ...)``): empty prefix, root_path stripped."""
    app = asgi_app(world.receiver, prefix="")

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, root_path="/callbacks")
        async with httpx.AsyncClient(transport=transport, base_url="http://callbacks.test") as http:
            body = world.report()
            ok = await http.post("/callbacks/push-sms", content=body, headers=world.signed_headers(body))
            assert ok.json()["recorded"] == 1
            assert (await http.post("/callbacks/", content=body)).status_code == 404

    asyncio.run(scenario())


# -- providers that sign in the URL query (WeChat's shape) ---------------------------------------------

SERVER_TOKEN = "wx-server-token"


def query_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's: SHA-1 hex of the sorted, concatenated token, timestamp and nonce."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


class QuerySignedChannel(PushChannel):
    """A provider shaped like WeChat: ``?signature=&timestamp=&nonce=`` in the URL, the report in the body."""

    def __init__(self) -> None:
        super().__init__("query-wx", ChannelKind.WECHAT)
        self.queries: list[Mapping[str, str] | None] = []

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime, *, query: Mapping[str, str] | None = None
    ) -> str:
        q = query or {}
        timestamp, nonce, signature = q.get("timestamp", ""), q.get("nonce", ""), q.get("signature", "")
        if not signature or not nonce:
            raise CallbackRejected("forged", "no signature")
        if not hmac.compare_digest(query_signature(SERVER_TOKEN, timestamp, nonce), signature):
            raise CallbackRejected("forged", "signature does not match")
        check_timestamp(timestamp, now)
        return f"{timestamp}:{nonce}"

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> Sequence[Receipt]:
        self.queries.append(query)
        return super().parse_callback(headers, body)


def signed_query(nonce: str, *, at: datetime | None = None, token: str = SERVER_TOKEN) -> dict[str, str]:
    stamp = str(int((at or datetime.now(UTC)).timestamp()))
    return {"signature": query_signature(token, stamp, nonce), "timestamp": stamp, "nonce": nonce, "openid": "o-1"}


def test_parse_query() -> None:
    assert parse_query(None) == {}
    assert parse_query({"a": "1"}) == {"a": "1"}
    assert parse_query("a=1&b=&c=%E6%B3%95+x") == {"a": "1", "b": "", "c": "法 x"}
    assert parse_query(b"signature=ab&nonce=12") == {"signature": "ab", "nonce": "12"}
    assert parse_query(b"") == {}
    for bad, match in (
        ("a=1&a=2", "appears twice"),
        ("&".join(f"p{i}=1" for i in range(MAX_QUERY_FIELDS + 1)), "more than"),
        (b"a=%FF", "not UTF-8"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_query(bad)


def test_only_methods_that_declare_query_are_given_it() -> None:
    def plain(headers: Mapping[str, str], body: bytes) -> None: ...
    def keyword(headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None) -> None: ...
    def anything(headers: Mapping[str, str], body: bytes, **kwargs: object) -> None: ...

    assert not takes_query(plain)
    assert takes_query(keyword)
    assert takes_query(anything)
    assert takes_query(QuerySignedChannel().verify_callback)
    assert not takes_query(PushChannel().parse_callback)
    assert not takes_query(len)  # no signature to inspect: called without it


def test_query_signed_callbacks_through_the_asgi_app_over_a_real_socket() -> None:
    clock = VirtualClock(start=datetime.now(UTC))
    wx, push = QuerySignedChannel(), PushChannel()
    client = DeliveryClient(":memory:", plugins=[channels_plugin(wx, push)], clock=clock, load_entry_points=False)
    try:
        task_id = client.submit(make_request(make_party(mobile=PHONE, wechat="o-1"), channels=[ChannelKind.WECHAT]))
        client.run_until_idle(until=clock.now())
        [dispatch_id] = wx.sent

        def report(event_id: str) -> bytes:
            at = clock.now().isoformat()
            return json.dumps(
                {"events": [{"dispatch_id": dispatch_id, "id": event_id, "type": "delivered", "at": at}]}
            ).encode()

        receiver = CallbackReceiver(client, secrets={"push-sms": SECRET})
        with Served(asgi_app(receiver)) as url, httpx.Client(base_url=url, timeout=5) as http:
            body = report("wx-1")
            query = signed_query("1111111111")
            ok = http.post("/callbacks/query-wx", params=query, content=body)
            assert (ok.status_code, ok.json()["recorded"]) == (200, 1)
            assert wx.queries == [query]  # the adapter saw the URL's parameters, decoded, and only them
            replay = http.post("/callbacks/query-wx", params=query, content=body)
            assert (replay.status_code, replay.json()) == (401, {"error": "rejected"})
            forged = signed_query("2222222222", token="guessed-token")
            assert http.post("/callbacks/query-wx", params=forged, content=body).status_code == 401
            stale = signed_query("3333333333", at=datetime.now(UTC) - timedelta(hours=1))
            assert http.post("/callbacks/query-wx", params=stale, content=body).status_code == 401
            in_headers = signed_query("4444444444")
            assert http.post("/callbacks/query-wx", headers=in_headers, content=body).status_code == 401
            twice = http.post(f"/callbacks/query-wx?{urlencode(signed_query('5555555555'))}&nonce=1", content=body)
            assert (twice.status_code, twice.json()) == (400, {"error": "malformed"})
            retried = http.post("/callbacks/query-wx", params=signed_query("6666666666"), content=body)
            assert (retried.status_code, retried.json()["duplicate"]) == (200, 1)
            # an adapter signing in headers is called as before, whatever the URL carries
            sms_body = json.dumps({"events": []}).encode()
            headers = sign_callback(SECRET, sms_body, timestamp=clock.now())
            assert http.post("/callbacks/push-sms?utm=x", headers=headers, content=sms_body).status_code == 200
        assert len(wx.queries) == 2  # refused callbacks never reach parse_callback
        assert (wx.queries[1] or {}).get("nonce") == "6666666666"
        assert receiver.handle("query-wx", {}, report("wx-2"), query=signed_query("7777777777")).status == 200
        assert receiver.handle("query-wx", {}, report("wx-3"), query="nonce=1&nonce=2").reason == "malformed"
        events = [e.event.TYPE for e in client.timeline(task_id)]
        assert events.count("dispatch.delivered") == 1
        client.run_until_idle()
        assert client.status(task_id).state is TaskState.FILED
    finally:
        client.close()


def test_link_token_is_one_function_for_every_channel() -> None:
    import base64 as b64
    import hashlib as hl
    import hmac as hm

    from delivery_sdk.callbacks import link_token

    expected = b64.urlsafe_b64encode(hm.new(b"key", b"T1.2", hl.sha256).digest()).decode()[:22]
    assert link_token("key", "T1.2") == link_token(b"key", "T1.2") == expected
    assert link_token("key", "T1.3") != expected
    assert link_token("other", "T1.2") != expected
    for module in ("delivery_sdk_sms", "delivery_sdk_wechat", "delivery_sdk_email"):
        assert __import__(module).link_token is link_token  # the plugins re-export the one function
