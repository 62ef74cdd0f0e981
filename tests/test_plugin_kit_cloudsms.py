"""The cloud SMS base (delivery_sdk.plugin_kit.cloudsms) and the emulator bases it is tested against
(ScriptedEmulator, CloudSmsEmulator): each helper's contract and every failure path."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from delivery_sdk import (
    CallbackRejected,
    ChannelError,
    Dispatch,
    MalformedReceipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TransientChannelError,
)
from delivery_sdk.plugin_kit import link_token
from delivery_sdk.plugin_kit.cloudsms import (
    BEIJING,
    CloudSmsChannel,
    authorization_fields,
    beijing_time,
    safe_code,
    token_matches,
)
from delivery_sdk.testing.emulator import CloudSmsEmulator, ScriptedEmulator, json_reply

TOKEN = "a-callback-token-of-some-length"


class _Sms(CloudSmsChannel):
    transient_codes: ClassVar[Mapping[str, float]] = {"Busy": 30.0, "Flaky": 0.0}
    auth_codes: ClassVar[frozenset[str]] = frozenset({"BadKey"})
    auth_hint = "check the AccessKey"
    code_limit = 8

    def __init__(self, **overrides: Any) -> None:
        options: dict[str, Any] = {
            "name": "cloud",
            "required": (("key_id", "id-1"), ("key_secret", "s3cret")),
            "secret": "s3cret",
            "callback_token": TOKEN,
            "link_template": "https://court.example/s/{token}",
            "link_key": None,
            "clock": None,
            "rate": None,
            "burst": 1,
            "transport": httpx.MockTransport(lambda request: httpx.Response(200)),
            "http": None,
            "timeout": 5.0,
            "max_connections": 4,
        }
        options.update(overrides)
        base_url = options.pop("base_url", "https://sms.example.com/")
        self.setup(base_url, **options)

    async def send(self, dispatch: Dispatch) -> SendResult:
        raise NotImplementedError

    async def status(self, dispatch: Dispatch) -> StatusReport:
        raise NotImplementedError


# -- the functions ---------------------------------------------------------------------------------------


def test_safe_code_keeps_only_a_short_printable_code() -> None:
    assert safe_code("isv.BUSINESS_LIMIT_CONTROL") == "isv.BUSINESS_LIMIT_CONTROL"
    assert safe_code(None) == "nocode"  # as the adapters have always written it
    assert safe_code("<script>号码13912345678</script>") == "script13912345678script"
    assert safe_code("x" * 100) == "x" * 64
    assert safe_code("x" * 100, limit=80) == "x" * 80
    assert safe_code("号码 ") == "unreadable code"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(TOKEN, True), ("wrong", False), (None, False), ("", False), ("\udcff号", False), (TOKEN + "x", False)],
)
def test_token_matches_in_constant_time_never_raising(given: str | None, expected: bool) -> None:
    assert token_matches(TOKEN, given) is expected
    assert token_matches("", given) is False


def test_authorization_fields_reads_the_three_parts_or_none() -> None:
    value = "ALG Credential=id/2024/sms, SignedHeaders=host;x-a,Signature=abc"
    assert authorization_fields(value, "ALG") == {
        "Credential": "id/2024/sms",
        "SignedHeaders": "host;x-a",
        "Signature": "abc",
    }
    assert authorization_fields(value, "OTHER") is None
    assert authorization_fields("ALG Credential=a,SignedHeaders,Signature=c", "ALG") is None  # no '='
    assert authorization_fields("ALG Credential=a,Credential=b,Signature=c", "ALG") is None  # twice
    assert authorization_fields("ALG Credential=a,SignedHeaders=b", "ALG") is None  # one missing
    assert authorization_fields("ALG Credential=a,SignedHeaders=b,Signature=c,Extra=d", "ALG") is None
    assert authorization_fields("", "ALG") is None


def test_beijing_time_reads_the_services_format() -> None:
    assert beijing_time("2024-03-01 08:00:00", "x") == datetime(2024, 3, 1, tzinfo=UTC)
    assert beijing_time(" 2024-03-01 08:00:00 ", "x").tzinfo is BEIJING


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cloud report: report_time is not a time"),
        (1709251200, "cloud report: report_time is not a time"),
        ("2" * 33, "cloud report: report_time is not a time"),
        ("2024-03-01T08:00:00", "is not 'YYYY-MM-DD HH:MM:SS'"),
        ("2024-02-30 08:00:00", "is not 'YYYY-MM-DD HH:MM:SS'"),
    ],
)
def test_beijing_time_refuses_anything_else(text: object, message: str) -> None:
    with pytest.raises(MalformedReceipt, match=message):
        beijing_time(text, "cloud report: report_time")


# -- CloudSmsChannel ---------------------------------------------------------------------------------------


def test_setup_keeps_the_settings_and_derives_the_link_key() -> None:
    channel = _Sms()
    assert (channel.name, channel.base_url, channel.host) == ("cloud", "https://sms.example.com", "sms.example.com")
    assert channel.clock().tzinfo is not None
    derived = _Sms(link_key=None)
    assert channel.link_for("T1.1") == derived.link_for("T1.1")
    assert channel.link_for("T1.1") == "https://court.example/s/" + channel.link_token_for("T1.1")
    assert _Sms(link_key="own").link_token_for("T1.1") == link_token("own", "T1.1")
    assert _Sms(link_key="own").link_token_for("T1.1") != channel.link_token_for("T1.1")
    assert _Sms(secret="other").link_token_for("T1.1") != channel.link_token_for("T1.1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "ftp://sms.example.com"}, "http"),
        ({"required": (("key_id", ""),)}, "key_id must not be empty"),
        ({"callback_token": " "}, "callback_token"),
        ({"link_template": "https://court.example/s/"}, r"link_template must contain '\{token\}'"),
        ({"timeout": 0.0}, "timeout must be positive"),
        ({"max_connections": 0}, "max_connections at least 1"),
    ],
)
def test_setup_refuses_an_unusable_setting(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _Sms(**overrides)


def test_check_code_maps_transient_and_refused_requests() -> None:
    channel = _Sms()
    answer = httpx.Response(200, headers={"retry-after": "5"})
    with pytest.raises(TransientChannelError, match=r"cloud.SendSms: the service is busy \(Busy\)") as busy:
        channel.check_code("cloud.SendSms", "Busy", answer)
    assert busy.value.retry_after == 30.0  # the code's least wait beats a shorter Retry-After
    with pytest.raises(TransientChannelError) as longer:
        channel.check_code("cloud.SendSms", "Busy", httpx.Response(200, headers={"retry-after": "90"}))
    assert longer.value.retry_after == 90.0
    with pytest.raises(TransientChannelError) as no_wait:
        channel.check_code("cloud.SendSms", "Flaky", httpx.Response(200))
    assert no_wait.value.retry_after is None
    with pytest.raises(ChannelError, match=r"refused the request \(BadKey\): check the AccessKey") as refused:
        channel.check_code("cloud.SendSms", "BadKey", answer)
    assert not isinstance(refused.value, TransientChannelError)
    for other in ("OK", None, 3, "isv.MOBILE_NUMBER_ILLEGAL"):
        channel.check_code("cloud.SendSms", other, answer)  # the caller judges these


def test_receipt_is_delivered_or_failed_with_a_sanitised_reason() -> None:
    channel = _Sms()
    at = datetime(2024, 3, 1, tzinfo=UTC)
    delivered = channel.receipt("T1.1", True, at, "ignored")
    assert (delivered.kind, delivered.provider_event_id, delivered.reason) == (
        ReceiptKind.DELIVERED,
        "T1.1:delivered",
        None,
    )
    failed = channel.receipt("T1.1", False, at, "MK:0001<b>long-long")
    assert (failed.kind, failed.provider_event_id) == (ReceiptKind.FAILED, "T1.1:failed")
    assert failed.reason == "cloud: not delivered (MK:0001b)"  # code_limit 8


def test_verify_callback_needs_the_token_and_keys_replays_by_body() -> None:
    channel = _Sms()
    now = datetime.now(UTC)
    key = channel.verify_callback({}, b"[]", now, query={"token": TOKEN})
    assert key.startswith("cloud:")
    assert key == channel.verify_callback({}, b"[]", now, query={"token": TOKEN})
    assert key != channel.verify_callback({}, b"[{}]", now, query={"token": TOKEN})
    for query in (None, {}, {"token": "wrong"}):
        with pytest.raises(CallbackRejected) as caught:
            channel.verify_callback({}, b"[]", now, query=query)
        assert caught.value.reason == "forged"


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        (b"[]", {"token": "wrong"}, "missing or wrong callback token"),
        (b"[]", None, "missing or wrong callback token"),
        (b"[" + b" " * (1 << 20) + b"]", {"token": TOKEN}, "larger than"),
        (b"not json", {"token": TOKEN}, "the body is not JSON"),
        (b"[" * 100_000, {"token": TOKEN}, "the body is not JSON"),
        (b'{"a": 1}', {"token": TOKEN}, "expected a JSON array of report objects"),
        (b"[1, 2]", {"token": TOKEN}, "expected a JSON array of report objects"),
    ],
)
def test_callback_reports_refuses_a_bad_push(body: bytes, query: dict[str, str] | None, message: str) -> None:
    with pytest.raises(MalformedReceipt, match=message):
        _Sms().callback_reports(body, query)


def test_callback_reports_returns_the_objects() -> None:
    body = json.dumps([{"out_id": "T1.1"}, {}]).encode()
    assert _Sms().callback_reports(body, {"token": TOKEN}) == [{"out_id": "T1.1"}, {}]


def test_aclose_closes_only_a_client_it_made() -> None:
    async def run() -> None:
        own = _Sms()
        await own.aclose()
        assert own._http.is_closed
        given = httpx.AsyncClient()
        borrowed = _Sms(http=given)
        await borrowed.aclose()
        assert not given.is_closed
        await given.aclose()

    asyncio.run(run())


# -- the emulator bases ------------------------------------------------------------------------------------


@dataclass
class _Message:
    out_id: str
    phone: str
    send_time: datetime
    receive_time: datetime | None = None
    status: str = ""


class _Service(CloudSmsEmulator[str, _Message]):
    message_type = _Message

    def __init__(self, **kwargs: Any) -> None:
        options: dict[str, Any] = {
            "name": "cloud-emulator",
            "callback_token": TOKEN,
            "callback_url": None,
            "sign_names": None,
            "qps": 2,
            "clock": None,
            "auto_deliver": False,
            "seed": 0,
        }
        options.update(kwargs)
        super().__init__(**options)

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        json_reply(request, 200, {"ok": True})

    def _report(self, message: _Message, success: bool, detail: str) -> dict[str, Any]:
        message.status = "DELIVERED" if success else detail
        message.receive_time = self.clock()
        return {"out_id": message.out_id, "success": success}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_scripted_emulator_scripts_and_counts() -> None:
    service: ScriptedEmulator[str] = ScriptedEmulator(name="scripted")
    service.fail_next("a", "b")
    service.fail_next_query("q")
    assert service._script.pending() == ["a", "b"]
    assert service._query_script.pending() == ["q"]
    service.attempts += ["T1.1", "T1.2", "T1.1"]
    assert (service.attempts_for("T1.1"), service.attempts_for("T9.9")) == (2, 0)
    dead = f"http://127.0.0.1:{_free_port()}/callbacks"
    assert service.push(dead, b"{}", {"Content-Type": "application/json"}) == 0  # nothing answered: no raise
    assert service.pushes == [0]


def test_cloud_sms_emulator_defaults_and_messages() -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    service = _Service(clock=lambda: now)
    assert service.sign_names == {"武汉中院"}
    assert service.illegal_numbers == set()
    assert _Service(sign_names={"A"}).sign_names == {"A"}
    service.messages += [_Message("T1.1", "139", now), _Message("T1.2", "138", now), _Message("T1.1", "137", now)]
    assert [m.phone for m in service.messages_for("T1.1")] == ["139", "137"]
    query, body = service._deliver("T1.1", False, "MK:0001", push=True)  # no callback_url: not pushed
    assert query == {"token": TOKEN}
    assert json.loads(body) == [{"out_id": "T1.1", "success": False}]
    assert service.messages[2].status == "MK:0001"
    assert service.messages[0].receive_time is None
    assert service.pushes == []
    with pytest.raises(IndexError):
        service._deliver("T9.9", True, "", push=False)
    assert service._next_request() == 1
    assert service._next_request() == 2


def test_cloud_sms_emulator_state_survives_a_round_trip() -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    service = _Service(clock=lambda: now)
    service.messages += [
        _Message("T1.1", "139", now, now + timedelta(seconds=5), "DELIVERED"),
        _Message("T1.2", "1", now),
    ]
    state = json.loads(json.dumps(service.dump_state()))
    again = _Service()
    again.load_state(state)
    assert again.messages == service.messages


def test_cloud_sms_emulator_throttles_over_qps() -> None:
    service = _Service(qps=2)
    with service._lock:
        assert [service._throttled() for _ in range(3)] == [False, False, True]


def test_cloud_sms_emulator_pushes_reports_with_the_token() -> None:
    seen: list[tuple[str, bytes]] = []

    class _Receiver(ScriptedEmulator[str]):
        def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
            length = int(request.headers.get("Content-Length", "0"))
            seen.append((request.path, request.rfile.read(length)))
            json_reply(request, 204 if len(seen) > 1 else 200, {})

    with _Receiver(name="receiver") as receiver:
        service = _Service(callback_url=f"{receiver.url}/callbacks/cloud")
        service.messages.append(_Message("T1.1", "139", datetime.now(UTC)))
        service._deliver("T1.1", True, "", push=True)
        service._push_later([{"out_id": "T1.1"}])
        service.wait_pushes()
    assert service.pushes == [200, 204]
    assert [path for path, _ in seen] == [f"/callbacks/cloud?token={TOKEN}"] * 2
    assert json.loads(seen[1][1]) == [{"out_id": "T1.1"}]


def test_cloud_sms_emulator_defaults() -> None:
    class _Quick(CloudSmsEmulator[str, _Message]):
        message_type = _Message
        default_qps = 7

    quick = _Quick(name="quick")
    assert (quick.qps, quick.callback_token, quick.callback_url, quick.auto_deliver) == (
        7,
        "emulator-callback-token",
        None,
        False,
    )
    assert quick.clock().tzinfo is not None
    assert _Quick(name="quick", qps=2, seed=3).qps == 2
