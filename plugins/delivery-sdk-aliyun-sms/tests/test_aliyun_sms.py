"""The Alibaba Cloud SMS channel against its emulator, over a real socket on 127.0.0.1.

Run after ``pip install -e plugins/delivery-sdk-aliyun-sms`` (the entry-point tests need the distribution).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx
import pytest
from delivery_sdk_aliyun_sms import (
    ENV,
    AliyunSmsChannel,
    EnvAliyunSmsPlugin,
    link_token,
    plugin,
    signing,
)
from delivery_sdk_aliyun_sms.emulator import AliyunSmsEmulator, Fault, sandbox

from delivery_sdk import (
    AsyncDeliveryClient,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Dispatch,
    EngineConfig,
    MalformedReceipt,
    PluginError,
    ReceiptKind,
    ServiceMethod,
    SQLiteStore,
    TaskState,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.callbacks import CallbackReceiver
from delivery_sdk.model import Contact, ContactKind
from delivery_sdk.plugins import PluginHost
from delivery_sdk.retry import RetryConfig
from delivery_sdk.testing import channels_plugin, make_party, make_request

MOBILE = "13912345678"
NAME = "李四光"


def dispatch(dispatch_id: str = "T1.1", mobile: str = MOBILE) -> Dispatch:
    request = make_request(make_party(mobile=mobile))
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="aliyun-sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value=mobile),
        case=request.case,
        recipient_name=NAME,
        documents=request.documents,
    )


class Collector:
    """Where the service pushes its reports: a real HTTP endpoint on 127.0.0.1 (path, query and body kept)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/aliyun-sms"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[AliyunSmsEmulator]:
    with AliyunSmsEmulator() as emulator:
        yield emulator


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def using(channel: AliyunSmsChannel, coro_fn: Any) -> Any:
    async with channel:
        return await coro_fn(channel)


# -- sending -------------------------------------------------------------------------------------------


def test_send_signs_v3_and_carries_only_the_link(service: AliyunSmsEmulator) -> None:
    channel = service.channel()
    result = run(using(channel, lambda c: c.send(dispatch("T1.1"))))
    assert result.accepted
    [message] = service.messages_for("T1.1")
    assert result.provider_ref == message.biz_id
    assert message.phone == MOBILE
    assert (message.sign_name, message.template_code) == ("武汉中院", "SMS_0001")
    token = link_token(channel._link_key, "T1.1")
    assert message.params == {
        "court": "武汉市武昌区人民法院",
        "case_no": "(2026)鄂0106民初1号",
        "url": f"https://ssfw.court.example/s/{token}",
    }
    text = json.dumps(message.params, ensure_ascii=False)
    assert NAME not in text
    assert MOBILE not in text
    assert "T1.1" not in text
    assert service.rejected == []
    [request] = service.received()
    assert request["path"] == "/"  # RPC style: POST /, every parameter in the form body, none in the URL
    assert request["to"] != MOBILE
    assert request["out_id"] == "T1.1"


def test_the_phone_number_is_never_in_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Code": "OK", "BizId": "b-1", "RequestId": "r"})

    channel = AliyunSmsChannel(
        access_key_id="k",
        access_key_secret="s",
        sign_name="法院",
        template_code="SMS_1",
        link_template="https://court.example/s/{token}",
        callback_token="t",
        transport=httpx.MockTransport(handler),
    )
    run(using(channel, lambda c: c.send(dispatch())))
    [request] = seen
    assert str(request.url) == "https://dysmsapi.aliyuncs.com/"
    assert MOBILE not in str(request.url)
    assert dict(parse_qsl(request.content.decode()))["PhoneNumbers"] == MOBILE
    assert request.headers["x-acs-action"] == "SendSms"
    assert request.headers["x-acs-version"] == "2017-05-25"
    assert request.headers["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=k,SignedHeaders=content-type;host;")


def test_send_is_not_idempotent_at_the_service(service: AliyunSmsEmulator) -> None:
    """dysmsapi has no idempotency: the same OutId twice is two messages. Hence status() before any resend."""

    async def twice(channel: AliyunSmsChannel) -> None:
        await channel.send(dispatch("T1.1", "13912345670"))
        await channel.send(dispatch("T1.1", "13912345670"))

    service.per_number = {}
    run(using(service.channel(), twice))
    assert len(service.messages_for("T1.1")) == 2


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"illegal": True}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"sign_name": "未报备的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"template_code": "SMS_9999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"params": lambda d, link: {"url": link}}, "isv.TEMPLATE_MISSING_PARAMETERS"),
    ],
)
def test_the_service_checks_number_sign_name_and_template(
    service: AliyunSmsEmulator, setup: dict[str, Any], code: str
) -> None:
    if setup.pop("illegal", False):
        service.illegal_numbers.add(MOBILE)
    result = run(using(service.channel(**setup), lambda c: c.send(dispatch("T1.1"))))
    assert not result.accepted
    assert result.reason == f"aliyun-sms: refused by Alibaba Cloud SMS ({code})"
    assert service.messages == []


@pytest.mark.parametrize(
    "code",
    ["isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
     "isv.OUT_OF_SERVICE", "isv.SOMETHING_NEW"],
)  # fmt: skip
def test_permanent_codes_are_refusals(service: AliyunSmsEmulator, code: str) -> None:
    service.fail_next(Fault.refuse(code))
    result = run(using(service.channel(), lambda c: c.send(dispatch())))
    assert not result.accepted
    assert code in (result.reason or "")


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        (Fault.refuse("isv.BUSINESS_LIMIT_CONTROL"), 60.0),
        (Fault.refuse("Throttling.User"), 1.0),
        (Fault.refuse("isp.SYSTEM_ERROR"), 1.0),
        (Fault.http(503, retry_after="7"), 7.0),
        (Fault.http(500), 1.0),
    ],
)
def test_flow_control_throttling_and_5xx_are_transient(service: AliyunSmsEmulator, fault: Fault, wait: float) -> None:
    service.fail_next(fault)
    with pytest.raises(TransientChannelError) as caught:
        run(using(service.channel(), lambda c: c.send(dispatch())))
    assert caught.value.retry_after == wait
    assert service.messages == []


def test_the_emulators_per_number_flow_control_is_transient(service: AliyunSmsEmulator) -> None:
    async def scenario(channel: AliyunSmsChannel) -> None:
        await channel.send(dispatch("T1.1"))
        with pytest.raises(TransientChannelError, match=r"busy \(isv.BUSINESS_LIMIT_CONTROL\)"):
            await channel.send(dispatch("T2.1"))  # the same number within the minute
        await channel.send(dispatch("T3.1", "13912345670"))  # another number is fine

    run(using(service.channel(), scenario))
    assert [m.out_id for m in service.messages] == ["T1.1", "T3.1"]


def test_the_emulators_qps_limit_is_throttling(service: AliyunSmsEmulator) -> None:
    service.qps = 1

    async def scenario(channel: AliyunSmsChannel) -> None:
        await channel.send(dispatch("T1.1"))
        with pytest.raises(TransientChannelError, match=r"Throttling.User"):
            await channel.send(dispatch("T2.1", "13912345670"))

    run(using(service.channel(), scenario))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"access_key_secret": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "LTAI-someone-else"}, "InvalidAccessKeyId.NotFound"),
    ],
)
def test_a_bad_signature_or_key_is_a_permanent_channel_error(
    service: AliyunSmsEmulator, kwargs: dict[str, str], code: str
) -> None:
    with pytest.raises(ChannelError, match=code) as caught:
        run(using(service.channel(**kwargs), lambda c: c.send(dispatch())))
    assert not isinstance(caught.value, TransientChannelError)
    assert service.rejected == [code]
    assert service.attempts == []


def test_the_emulator_checks_the_date_window_the_body_hash_and_the_nonce(service: AliyunSmsEmulator) -> None:
    channel = service.channel()
    params = channel.send_params(dispatch())

    def post(headers: dict[str, str], body: bytes) -> dict[str, Any]:
        with httpx.Client(base_url=service.url) as http:
            data: dict[str, Any] = http.post("/", content=body, headers=headers).json()
            return data

    stale = (datetime.now(UTC) - timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert post(*channel.signed_request("SendSms", params, date=stale))["Code"] == "InvalidTimeStamp.Expired"
    headers, body = channel.signed_request("SendSms", params, nonce="n-1")
    assert post(headers, body.replace(b"SMS_0001", b"SMS_0002"))["Code"] == "SignatureDoesNotMatch"
    assert post(headers, body)["Code"] == "OK"
    assert post(headers, body)["Code"] == "SignatureNonceUsed"  # a replayed request
    unsigned = {k: v for k, v in channel.signed_request("SendSms", params)[0].items() if k != "Authorization"}
    assert post(unsigned, body)["Code"] == "IncompleteSignature"
    run(channel.aclose())


def test_a_non_mobile_contact_is_refused_before_any_request(service: AliyunSmsEmulator) -> None:
    wrong = attrs.evolve(dispatch(), contact=Contact(kind=ContactKind.EMAIL, value="a@example.com"))
    with pytest.raises(ChannelError, match="no mobile number"):
        run(using(service.channel(), lambda c: c.send(wrong)))
    assert service.attempts == []


# -- status: QuerySendDetails ----------------------------------------------------------------------------


def test_timeout_is_transient_and_status_finds_the_message(service: AliyunSmsEmulator) -> None:
    service.fail_next(Fault.timeout(0.8))

    async def scenario(channel: AliyunSmsChannel) -> Any:
        with pytest.raises(TransientChannelError, match="timed out"):
            await channel.send(dispatch())
        return await channel.status(dispatch())

    report = run(using(service.channel(timeout=0.3), scenario))
    assert report.found
    assert report.receipts == ()  # SendStatus 1: waiting for the carrier's report


def test_status_of_a_dispatch_never_received_asks_each_date(service: AliyunSmsEmulator) -> None:
    report = run(using(service.channel(), lambda c: c.status(dispatch("T9.1"))))
    assert not report.found
    today = datetime.now(UTC).astimezone(timezone_beijing()).date()
    assert service.queries == [today.strftime("%Y%m%d"), (today - timedelta(days=1)).strftime("%Y%m%d")]


def timezone_beijing() -> Any:
    from delivery_sdk_aliyun_sms import BEIJING

    return BEIJING


@pytest.mark.parametrize(("success", "kind"), [(True, ReceiptKind.DELIVERED), (False, ReceiptKind.FAILED)])
def test_status_reports_the_carriers_verdict(service: AliyunSmsEmulator, success: bool, kind: ReceiptKind) -> None:
    async def scenario(channel: AliyunSmsChannel) -> Any:
        await channel.send(dispatch())
        service.deliver("T1.1", success=success, err_code="MK:0012")
        return await channel.status(dispatch())

    report = run(using(service.channel(), scenario))
    [receipt] = report.receipts
    assert (receipt.dispatch_id, receipt.kind) == ("T1.1", kind)
    assert receipt.at.utcoffset() == timedelta(hours=8)
    if not success:
        assert receipt.reason == "aliyun-sms: not delivered (MK:0012)"


def test_status_5xx_is_transient(service: AliyunSmsEmulator) -> None:
    service.fail_next_query(Fault.http(503, retry_after="2"))
    with pytest.raises(TransientChannelError) as caught:
        run(using(service.channel(), lambda c: c.status(dispatch())))
    assert caught.value.retry_after == 2.0


# -- the SmsReport push --------------------------------------------------------------------------------


def test_the_pushed_report_arrives_over_http_and_is_verified_by_its_token(
    service: AliyunSmsEmulator, collector: Collector
) -> None:
    service.callback_url = collector.url
    channel = service.channel()
    run(using(channel, lambda c: c.send(dispatch())))
    service.deliver("T1.1")
    assert service.pushes == [200]
    [(path, headers, body)] = collector.received
    query = dict(parse_qsl(urlsplit(path).query))
    key = channel.verify_callback(headers, body, datetime.now(UTC), query=query)
    assert key == channel.verify_callback(headers, body, datetime.now(UTC), query=query)  # replay spotted
    [receipt] = channel.parse_callback(headers, body, query=query)
    assert (receipt.dispatch_id, receipt.kind) == ("T1.1", ReceiptKind.DELIVERED)
    assert isinstance(json.loads(body), list)  # the documented shape: a JSON array of reports


def test_a_push_without_the_right_token_is_refused_before_its_body_is_read(service: AliyunSmsEmulator) -> None:
    channel = service.channel()
    now = datetime.now(UTC)
    for query in ({}, {"token": "guess"}, {"token": service.callback_token + "x"}, {"token": "令牌"}):
        with pytest.raises(CallbackRejected) as caught:
            channel.verify_callback({}, b"not even json", now, query=query)
        assert caught.value.reason == "forged"
        with pytest.raises(MalformedReceipt, match="token"):
            channel.parse_callback({}, b"[]", query=query)
    run(channel.aclose())


@pytest.mark.parametrize(
    "raw",
    [
        b'[{"out_id": "T1.1", "success": "yes", "report_time": "2026-01-01 00:00:00"}]',
        b'[{"out_id": "T1.1", "success": true, "report_time": "yesterday"}]',
        b'{"out_id": "T1.1"}',
        b"[1, 2]",
        b"not json",
    ],
)
def test_malformed_reports_are_refused(service: AliyunSmsEmulator, raw: bytes) -> None:
    channel = service.channel()
    with pytest.raises(MalformedReceipt):
        channel.parse_callback({}, raw, query={"token": service.callback_token})
    run(channel.aclose())


def test_reports_of_messages_not_sent_by_the_sdk_are_skipped(service: AliyunSmsEmulator) -> None:
    channel = service.channel()
    raw = b'[{"out_id": "", "success": true, "report_time": "2026-01-01 00:00:00", "biz_id": "1^0"}]'
    assert channel.parse_callback({}, raw, query={"token": service.callback_token}) == []
    run(channel.aclose())


# -- through the engine --------------------------------------------------------------------------------


def client_for(channel: AliyunSmsChannel, clock: VirtualClock, store: Any = None, **kw: Any) -> AsyncDeliveryClient:
    return AsyncDeliveryClient(
        store if store is not None else SQLiteStore(":memory:"),
        plugins=[channels_plugin(channel)],
        clock=clock,
        load_entry_points=False,
        **kw,
    )


def test_end_to_end_submit_to_served_with_the_report_pushed_back_through_the_receiver(
    service: AliyunSmsEmulator, collector: Collector
) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    service.callback_url = collector.url
    service.fail_next(Fault.http(503))  # one transient failure on the way

    async def scenario() -> None:
        async with client_for(service.channel(), clock) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now())
            [d] = client.status(task_id).dispatches
            assert (d.channel, d.status.value) == ("aliyun-sms", "sent")
            delivered_at = clock.advance(timedelta(minutes=1))
            service.deliver(d.dispatch_id)  # the carrier's report, pushed over HTTP to the collector
            [(path, headers, body)] = collector.received
            receiver = CallbackReceiver(client)
            query = urlsplit(path).query
            first = await receiver.ahandle("aliyun-sms", headers, body, query=query)
            assert (first.status, first.body["recorded"]) == (200, 1)
            again = await receiver.ahandle("aliyun-sms", headers, body, query=query)
            assert again.status == 401  # the same push replayed
            forged = await receiver.ahandle("aliyun-sms", headers, body, query="token=guess")
            assert (forged.status, forged.reason) == (401, "forged")
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            assert status.method is ServiceMethod.ELECTRONIC
            assert status.served_at == delivered_at.replace(microsecond=0)
            assert len(service.messages_for(d.dispatch_id)) == 1

    run(scenario())


def test_engine_timeout_in_doubt_is_reconciled_not_resent(service: AliyunSmsEmulator) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    service.fail_next(Fault.timeout(0.8))
    config = EngineConfig(retry=RetryConfig(attempts=1))

    async def scenario() -> None:
        async with client_for(service.channel(timeout=0.3), clock, config=config) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now() + timedelta(minutes=10))
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            assert len(service.messages_for(d.dispatch_id)) == 1  # asked, not sent again

    run(scenario())


class SimulatedCrash(BaseException):
    """The process dies: nothing after the raise runs, nothing is committed."""


class CrashAfterSend(AliyunSmsChannel):
    async def send(self, dispatch: Dispatch) -> Any:
        await super().send(dispatch)  # the service has the message...
        raise SimulatedCrash  # ...and the engine never learns it


def test_a_crash_between_send_and_receipt_reconciles_through_query_send_details(
    service: AliyunSmsEmulator, tmp_path: Path
) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    store = tmp_path / "service.sqlite3"
    mobiles = [f"1391234567{i}" for i in range(3)]
    options: dict[str, Any] = {
        "access_key_id": service.access_key_id,
        "access_key_secret": service.access_key_secret,
        "callback_token": service.callback_token,
        "sign_name": "武汉中院",
        "template_code": "SMS_0001",
        "link_template": "https://court.example/s/{token}",
        "clock": clock.now,
    }

    async def before_the_crash() -> list[str]:
        client = client_for(CrashAfterSend(service.url, **options), clock, str(store))
        ids = await client.submit_many([make_request(make_party(f"P{i}", mobile=m)) for i, m in enumerate(mobiles)])
        with pytest.raises(SimulatedCrash):
            await client.run_until_idle()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)
        await client.aclose()
        return ids

    task_ids = run(before_the_crash())
    sent_before = {m.out_id for m in service.messages}
    assert sent_before  # at least one send reached the service before the crash

    async def after_the_restart() -> None:
        clock.advance(EngineConfig().lease + timedelta(seconds=1))
        async with client_for(AliyunSmsChannel(service.url, **options), clock, str(store)) as client:
            await client.run_until_idle(until=clock.now())
            for out_id in sent_before:
                service.deliver(out_id, push=False)  # reports the engine can only learn by polling
            await client.run_until_idle()
            for task_id in task_ids:
                status = client.status(task_id)
                assert status.state is TaskState.FILED
                assert status.method is ServiceMethod.ELECTRONIC

    run(after_the_restart())
    assert len(service.messages) == 3
    assert all(len(service.messages_for(out_id)) == 1 for out_id in sent_before)  # none sent twice
    assert any(q for q in service.queries)  # reconciled through QuerySendDetails


def test_engine_permanent_failure_falls_back_to_post(service: AliyunSmsEmulator) -> None:
    from delivery_sdk.testing import Harness, Outcome

    async def scenario() -> None:
        h = Harness(extra_plugins=[channels_plugin(service.channel(sign_name="错"))], kinds={ChannelKind.ESERVICE})
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(make_party(mobile=MOBILE)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.method is ServiceMethod.POSTAL
        first = status.dispatches[0]
        assert first.detail == "aliyun-sms: refused by Alibaba Cloud SMS (isv.SMS_SIGNATURE_ILLEGAL)"
        await h.aclose()

    run(scenario())


# -- the entry points ----------------------------------------------------------------------------------


FULL_ENV = {
    ENV["access_key_id"]: "LTAI-key",
    ENV["access_key_secret"]: "key-secret",
    ENV["sign_name"]: "武汉中院",
    ENV["template_code"]: "SMS_0001",
    ENV["link_template"]: "https://ssfw.court.example/s/{token}",
    ENV["callback_token"]: "cb-token",
    ENV["rate"]: "50",
}


def test_register_channels_entry_points_are_installed() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "aliyun-sms"]
    assert entry.load() is plugin
    [emulator] = [e for e in importlib.metadata.entry_points(group="delivery_sdk.emulators") if e.name == "aliyun-sms"]
    assert emulator.load() is sandbox


def test_register_channels_registers_nothing_unless_configured() -> None:
    host = PluginHost([EnvAliyunSmsPlugin({})], load_entry_points=False)
    assert "aliyun-sms" not in [c.name for c in host.channels]


def test_register_channels_from_the_environment() -> None:
    host = PluginHost([EnvAliyunSmsPlugin(FULL_ENV)], load_entry_points=False)
    channel = host.channels.get("aliyun-sms")
    assert isinstance(channel, AliyunSmsChannel)
    assert channel.base_url == "https://dysmsapi.aliyuncs.com"
    assert channel.limiter.rate == 50.0
    assert "key-secret" not in repr(channel)
    run(channel.aclose())


def test_register_channels_partial_configuration_names_every_missing_variable() -> None:
    partial = {ENV["sign_name"]: "武汉中院", ENV["timeout"]: "0"}
    host = PluginHost([EnvAliyunSmsPlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for key in ("access_key_id", "access_key_secret", "template_code", "link_template", "callback_token"):
        assert ENV[key] in problems, key
    assert "DELIVERY_SDK_ALIYUN_SMS_TIMEOUT must be positive" in problems
    with pytest.raises(PluginError, match=r"not usable: link_template must contain"):
        EnvAliyunSmsPlugin({**FULL_ENV, ENV["link_template"]: "https://court.example/s/"}).configured()


def test_the_sandbox_pushes_to_the_receiver_base(collector: Collector) -> None:
    base = collector.url.rsplit("/", 1)[0]
    emulator = sandbox(callback_url=base)
    with emulator:
        env = emulator.sandbox_env()
        channel = EnvAliyunSmsPlugin(env).configured()
        assert channel is not None
        run(using(channel, lambda c: c.send(dispatch())))
        emulator.wait_pushes()
    [(path, _, body)] = collector.received
    assert path.startswith("/callbacks/aliyun-sms?token=")
    assert json.loads(body)[0]["out_id"] == "T1.1"


def test_signed_request_is_what_the_signing_module_computes() -> None:
    channel = AliyunSmsChannel(
        "http://127.0.0.1:9",
        access_key_id="k",
        access_key_secret="s",
        sign_name="法院",
        template_code="SMS_1",
        link_template="https://court.example/s/{token}",
        callback_token="t",
    )
    headers, body = channel.signed_request("SendSms", {"A": "1"}, date="2026-12-07T00:00:00Z", nonce="n")
    assert headers["host"] == "127.0.0.1:9"
    assert headers["x-acs-content-sha256"] == signing.sha256_hex(body)
    expected = signing.authorization("k", "s", "POST", "/", {}, dict(headers), body)
    assert headers["Authorization"] == expected
    run(channel.aclose())


def test_the_emulator_answers_send_batch_sms_as_documented(service: AliyunSmsEmulator) -> None:
    """SendBatchSms (up to 100 numbers, one sign name and parameter object per number, one OutId for all):
    served by the emulator for completeness; the adapter sends one dispatch per SendSms, so that each
    dispatch has an OutId of its own to reconcile by."""
    channel = service.channel()
    template = {"court": "法院", "case_no": "案号", "url": "https://court.example/s/x"}

    def batch(phones: list[str], signs: list[str]) -> str:
        params = {
            "PhoneNumberJson": json.dumps(phones),
            "SignNameJson": json.dumps(signs, ensure_ascii=False),
            "TemplateCode": "SMS_0001",
            "TemplateParamJson": json.dumps([template] * len(phones), ensure_ascii=False),
            "OutId": "B1",
        }
        headers, body = channel.signed_request("SendBatchSms", params)
        with httpx.Client(base_url=service.url) as http:
            return str(http.post("/", content=body, headers=headers).json()["Code"])

    assert batch(["13912345670", "13912345671"], ["武汉中院"]) == "isv.INVALID_PARAMETERS"
    assert batch(["13912345670", "13912345671"], ["武汉中院", "未报备"]) == "isv.SMS_SIGNATURE_ILLEGAL"
    assert batch(["13912345670", "13912345671"], ["武汉中院", "武汉中院"]) == "OK"
    assert len(service.messages_for("B1")) == 2
    run(channel.aclose())


def test_the_emulator_takes_rpc_parameters_from_the_query_too(service: AliyunSmsEmulator) -> None:
    """As the official SDKs send them (in the query, signed in the canonical query string)."""
    channel = service.channel()
    params = channel.send_params(dispatch())
    headers = {
        "host": channel.host,
        "x-acs-action": "SendSms",
        "x-acs-version": "2017-05-25",
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": "q-1",
        "x-acs-content-sha256": signing.sha256_hex(b""),
    }
    headers["Authorization"] = signing.authorization(
        channel.access_key_id, service.access_key_secret, "POST", "/", params, headers, b""
    )
    with httpx.Client(base_url=service.url) as http:
        answer = http.post("/?" + signing.canonical_query(params), headers=headers).json()
    assert answer["Code"] == "OK"
    assert [m.out_id for m in service.messages] == ["T1.1"]
    run(channel.aclose())
