"""The Tencent Cloud SMS channel against its emulator, over a real socket on 127.0.0.1.

Run after ``pip install -e plugins/delivery-sdk-tencent-sms`` (the entry-point tests need the distribution).
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
from delivery_sdk_tencent_sms import ENV, EnvTencentSmsPlugin, TencentSmsChannel, e164, link_token, plugin, signing
from delivery_sdk_tencent_sms.emulator import Fault, TencentSmsEmulator, sandbox

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
from delivery_sdk.testing import Harness, Outcome, channels_plugin, make_party, make_request

MOBILE = "13912345678"
NAME = "李四光"


def dispatch(dispatch_id: str = "T1.1", mobile: str = MOBILE) -> Dispatch:
    request = make_request(make_party(mobile=mobile))
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="tencent-sms",
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
        return f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/tencent-sms"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[TencentSmsEmulator]:
    with TencentSmsEmulator() as emulator:
        yield emulator


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def using(channel: TencentSmsChannel, coro_fn: Any) -> Any:
    async with channel:
        return await coro_fn(channel)


# -- sending -------------------------------------------------------------------------------------------


def test_send_signs_tc3_and_carries_only_the_link_token(service: TencentSmsEmulator) -> None:
    channel = service.channel()
    result = run(using(channel, lambda c: c.send(dispatch("T1.1"))))
    assert result.accepted
    [message] = service.messages_for("T1.1")
    assert result.provider_ref == message.serial_no
    assert message.phone == "+8613912345678"
    assert (message.sign_name, message.template_id) == ("武汉中院", "1234567")
    token = link_token(channel._link_key, "T1.1")
    assert message.params == ["武汉市武昌区人民法院", "(2026)鄂0106民初1号", token]
    assert channel.link_for("T1.1") == f"https://ssfw.court.example/s/{token}"
    text = json.dumps(message.params, ensure_ascii=False)
    assert NAME not in text
    assert MOBILE not in text
    assert "T1.1" not in text
    assert service.rejected == []


def test_the_phone_number_is_never_in_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = {"SerialNo": "s-1", "Code": "Ok", "SessionContext": "T1.1", "PhoneNumber": "+86..."}
        return httpx.Response(200, json={"Response": {"SendStatusSet": [status], "RequestId": "r"}})

    channel = TencentSmsChannel(
        secret_id="AKID",
        secret_key="s",
        sdk_app_id="1400000001",
        sign_name="法院",
        template_id="1",
        link_template="https://court.example/s/{token}",
        callback_token="t",
        transport=httpx.MockTransport(handler),
    )
    run(using(channel, lambda c: c.send(dispatch())))
    [request] = seen
    assert str(request.url) == "https://sms.tencentcloudapi.com/"
    assert json.loads(request.content)["PhoneNumberSet"] == ["+8613912345678"]
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKID/")
    assert "SignedHeaders=content-type;host;x-tc-action," in request.headers["Authorization"]


def test_e164() -> None:
    assert {e164(n) for n in ("13912345678", "+8613912345678", "008613912345678", "8613912345678")} == {
        "+8613912345678"
    }


def test_send_is_not_idempotent_at_the_service(service: TencentSmsEmulator) -> None:
    service.per_number = {}

    async def twice(channel: TencentSmsChannel) -> None:
        await channel.send(dispatch("T1.1"))
        await channel.send(dispatch("T1.1"))

    run(using(service.channel(), twice))
    assert len(service.messages_for("T1.1")) == 2


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"illegal": True}, "InvalidParameterValue.IncorrectPhoneNumber"),
        ({"sign_name": "未报备的签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
        ({"template_id": "7654321"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
        ({"params": lambda d, token: [token]}, "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"),
        (
            {"params": lambda d, token: ["法院", "案号", f"https://court.example/s/{token}"]},
            "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        ),
    ],
)
def test_the_service_checks_number_sign_name_and_template(
    service: TencentSmsEmulator, setup: dict[str, Any], code: str
) -> None:
    if setup.pop("illegal", False):
        service.illegal_numbers.add("+8613912345678")
    result = run(using(service.channel(**setup), lambda c: c.send(dispatch())))
    assert not result.accepted
    assert result.reason == f"tencent-sms: refused by Tencent Cloud SMS ({code})"
    assert service.messages == []


@pytest.mark.parametrize(
    "code",
    ["FailedOperation.PhoneNumberInBlacklist", "LimitExceeded.PhoneNumberDailyLimit",
     "FailedOperation.InsufficientBalanceInSmsPackage", "FailedOperation.ContainSensitiveWord", "Something.New"],
)  # fmt: skip
def test_permanent_codes_are_refusals(service: TencentSmsEmulator, code: str) -> None:
    service.fail_next(Fault.refuse(code))
    result = run(using(service.channel(), lambda c: c.send(dispatch())))
    assert not result.accepted
    assert code in (result.reason or "")


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        (Fault.refuse("LimitExceeded.PhoneNumberThirtySecondLimit"), 30.0),
        (Fault.refuse("LimitExceeded.PhoneNumberOneHourLimit"), 3600.0),
        (Fault.refuse("InternalError.Timeout"), 1.0),
        (Fault.http(502), None),
    ],
)
def test_frequency_limits_and_gateway_errors_are_transient(
    service: TencentSmsEmulator, fault: Fault, wait: float | None
) -> None:
    service.fail_next(fault)
    with pytest.raises(TransientChannelError) as caught:
        run(using(service.channel(), lambda c: c.send(dispatch())))
    assert caught.value.retry_after == wait
    assert service.messages == []


def test_the_emulators_per_number_limits_and_request_rate(service: TencentSmsEmulator) -> None:
    async def scenario(channel: TencentSmsChannel) -> None:
        await channel.send(dispatch("T1.1"))
        with pytest.raises(TransientChannelError, match=r"PhoneNumberThirtySecondLimit"):
            await channel.send(dispatch("T2.1"))
        service.qps = len(service.received())
        with pytest.raises(TransientChannelError, match=r"RequestLimitExceeded"):
            await channel.send(dispatch("T3.1", "13912345670"))

    run(using(service.channel(), scenario))
    assert [m.session_context for m in service.messages] == ["T1.1"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret_key": "not-the-key"}, "AuthFailure.SignatureFailure"),
        ({"secret_id": "AKID-someone-else"}, "AuthFailure.SecretIdNotFound"),
        ({"sdk_app_id": "1400009999"}, "InvalidParameterValue.SdkAppIdNotExist"),
    ],
)
def test_bad_credentials_are_a_permanent_channel_error(
    service: TencentSmsEmulator, kwargs: dict[str, str], code: str
) -> None:
    with pytest.raises(ChannelError, match=code) as caught:
        run(using(service.channel(**kwargs), lambda c: c.send(dispatch())))
    assert not isinstance(caught.value, TransientChannelError)
    assert service.attempts == []


def test_the_emulator_checks_the_timestamp_window_and_the_signed_body(service: TencentSmsEmulator) -> None:
    channel = service.channel()
    payload = channel.send_payload(dispatch())

    def post(headers: dict[str, str], body: bytes) -> str:
        with httpx.Client(base_url=service.url) as http:
            answer = http.post("/", content=body, headers=headers).json()["Response"]
            return str(answer.get("Error", {}).get("Code", "Ok"))

    stale = int(datetime.now(UTC).timestamp()) - 400
    assert post(*channel.signed_request("SendSms", payload, timestamp=stale)) == "AuthFailure.SignatureExpire"
    headers, body = channel.signed_request("SendSms", payload)
    assert post(headers, body.replace(b"1234567", b"7654321")) == "AuthFailure.SignatureFailure"
    assert post({**headers, "X-TC-Action": "PullSmsSendStatus"}, body) == "AuthFailure.SignatureFailure"
    assert post(headers, body) == "Ok"
    run(channel.aclose())


def test_a_non_mobile_contact_is_refused_before_any_request(service: TencentSmsEmulator) -> None:
    wrong = attrs.evolve(dispatch(), contact=Contact(kind=ContactKind.EMAIL, value="a@example.com"))
    with pytest.raises(ChannelError, match="no mobile number"):
        run(using(service.channel(), lambda c: c.send(wrong)))
    assert service.attempts == []


# -- status: PullSmsSendStatusByPhoneNumber ----------------------------------------------------------------


def test_status_waits_for_the_report_before_believing_never_received(service: TencentSmsEmulator) -> None:
    clock = VirtualClock()
    service.clock = clock.now

    async def scenario(channel: TencentSmsChannel) -> None:
        with pytest.raises(TransientChannelError, match="no report yet") as caught:
            await channel.status(dispatch("T9.1"))
        assert caught.value.retry_after == 600.0
        clock.advance(timedelta(minutes=4))
        with pytest.raises(TransientChannelError) as caught:
            await channel.status(dispatch("T9.1"))
        assert caught.value.retry_after == 360.0
        clock.advance(timedelta(minutes=6))
        assert not (await channel.status(dispatch("T9.1"))).found

    run(using(service.channel(), scenario))
    assert service.queries == ["PullSmsSendStatusByPhoneNumber"] * 3


def test_timeout_then_report_status_finds_the_message(service: TencentSmsEmulator) -> None:
    service.fail_next(Fault.timeout(0.8))

    async def scenario(channel: TencentSmsChannel) -> Any:
        with pytest.raises(TransientChannelError, match="timed out"):
            await channel.send(dispatch())
        with pytest.raises(TransientChannelError, match="no report yet"):
            await channel.status(dispatch())
        service.deliver("T1.1", push=False)
        return await channel.status(dispatch())

    report = run(using(service.channel(timeout=0.3), scenario))
    assert report.found
    assert report.provider_ref == service.messages_for("T1.1")[0].serial_no
    [receipt] = report.receipts
    assert receipt.kind is ReceiptKind.DELIVERED


def test_status_reports_a_failure(service: TencentSmsEmulator) -> None:
    async def scenario(channel: TencentSmsChannel) -> Any:
        await channel.send(dispatch())
        service.deliver("T1.1", success=False, errmsg="MK:0012")
        return await channel.status(dispatch())

    [receipt] = run(using(service.channel(), scenario)).receipts
    assert receipt.kind is ReceiptKind.FAILED
    assert receipt.reason == "tencent-sms: not delivered (MK:0012)"


def test_status_gateway_error_is_transient(service: TencentSmsEmulator) -> None:
    service.fail_next_query(Fault.http(503))
    with pytest.raises(TransientChannelError, match="HTTP 503"):
        run(using(service.channel(), lambda c: c.status(dispatch())))


def test_pull_sms_send_status_hands_each_report_out_once(service: TencentSmsEmulator) -> None:
    async def scenario(channel: TencentSmsChannel) -> tuple[Any, Any]:
        await channel.send(dispatch("T1.1"))
        await channel.send(dispatch("T2.1", "13912345670"))
        service.deliver("T1.1", push=False)
        service.deliver("T2.1", success=False, push=False)
        return await channel.pull_receipts(), await channel.pull_receipts()

    first, second = run(using(service.channel(), scenario))
    assert {(r.dispatch_id, r.kind) for r in first} == {("T1.1", ReceiptKind.DELIVERED), ("T2.1", ReceiptKind.FAILED)}
    assert second == []


# -- status callbacks ----------------------------------------------------------------------------------


def test_the_callback_arrives_over_http_and_is_verified_by_its_token(
    service: TencentSmsEmulator, collector: Collector
) -> None:
    service.callback_url = collector.url
    channel = service.channel()
    run(using(channel, lambda c: c.send(dispatch())))
    service.deliver("T1.1")
    assert service.pushes == [200]
    [(path, headers, body)] = collector.received
    query = dict(parse_qsl(urlsplit(path).query))
    key = channel.verify_callback(headers, body, datetime.now(UTC), query=query)
    assert key == channel.verify_callback(headers, body, datetime.now(UTC), query=query)
    [receipt] = channel.parse_callback(headers, body, query=query)
    assert (receipt.dispatch_id, receipt.kind) == ("T1.1", ReceiptKind.DELIVERED)
    assert receipt.at.utcoffset() == timedelta(hours=8)
    [report] = json.loads(body)
    assert set(report) == {"user_receive_time", "nationcode", "mobile", "report_status", "errmsg", "description", "sid"}


def test_a_callback_this_process_cannot_place_is_left_to_the_poll(service: TencentSmsEmulator) -> None:
    sender, receiver = service.channel(), service.channel()  # a worker and a separate callback receiver
    run(using(sender, lambda c: c.send(dispatch())))
    query, body = service.deliver("T1.1", push=False)
    assert receiver.parse_callback({}, body, query=query) == []
    report = run(using(receiver, lambda c: c.status(dispatch())))  # the poll finds it by SessionContext
    assert [r.kind for r in report.receipts] == [ReceiptKind.DELIVERED]
    run(sender.aclose())


def test_a_callback_without_the_right_token_is_refused_before_its_body_is_read(service: TencentSmsEmulator) -> None:
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
        b'[{"sid": "s", "report_status": "MAYBE", "user_receive_time": "2026-01-01 00:00:00"}]',
        b'[{"sid": "s", "report_status": "SUCCESS", "user_receive_time": "yesterday"}]',
        b'{"sid": "s"}',
        b"[1]",
        b"not json",
    ],
)
def test_malformed_callbacks_are_refused(service: TencentSmsEmulator, raw: bytes) -> None:
    channel = service.channel()
    with pytest.raises(MalformedReceipt):
        channel.parse_callback({}, raw, query={"token": service.callback_token})
    run(channel.aclose())


# -- through the engine --------------------------------------------------------------------------------


def client_for(channel: TencentSmsChannel, clock: VirtualClock, store: Any = None, **kw: Any) -> AsyncDeliveryClient:
    return AsyncDeliveryClient(
        store if store is not None else SQLiteStore(":memory:"),
        plugins=[channels_plugin(channel)],
        clock=clock,
        load_entry_points=False,
        **kw,
    )


def test_end_to_end_submit_to_served_with_the_callback_pushed_back_through_the_receiver(
    service: TencentSmsEmulator, collector: Collector
) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    service.callback_url = collector.url
    service.fail_next(Fault.refuse("InternalError.Timeout"))  # one transient failure on the way

    async def scenario() -> None:
        async with client_for(service.channel(), clock) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now())
            [d] = client.status(task_id).dispatches
            assert (d.channel, d.status.value) == ("tencent-sms", "sent")
            delivered_at = clock.advance(timedelta(minutes=1))
            service.deliver(d.dispatch_id)
            [(path, headers, body)] = collector.received
            receiver = CallbackReceiver(client)
            query = urlsplit(path).query
            first = await receiver.ahandle("tencent-sms", headers, body, query=query)
            assert (first.status, first.body["recorded"]) == (200, 1)
            assert (await receiver.ahandle("tencent-sms", headers, body, query=query)).status == 401  # replayed
            forged = await receiver.ahandle("tencent-sms", headers, body, query="token=guess")
            assert (forged.status, forged.reason) == (401, "forged")
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            assert status.method is ServiceMethod.ELECTRONIC
            assert status.served_at == delivered_at.replace(microsecond=0)
            assert len(service.messages_for(d.dispatch_id)) == 1

    run(scenario())


def test_engine_send_lost_before_the_service_is_resent_once_the_grace_has_passed(service: TencentSmsEmulator) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    service.auto_deliver = True
    service.fail_next(Fault.timeout(0.8, accept=False))  # the answer is lost and nothing was taken
    config = EngineConfig(retry=RetryConfig(attempts=1))

    async def scenario() -> None:
        async with client_for(service.channel(timeout=0.3), clock, config=config) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now() + timedelta(hours=1))
            [d] = client.status(task_id).dispatches
            assert d.status.value in ("sent", "delivered")
            assert len(service.messages_for(d.dispatch_id)) == 1
            assert service.attempts_for(d.dispatch_id) == 2  # lost once, sent once

    run(scenario())


class SimulatedCrash(BaseException):
    """The process dies: nothing after the raise runs, nothing is committed."""


class CrashAfterSend(TencentSmsChannel):
    async def send(self, dispatch: Dispatch) -> Any:
        await super().send(dispatch)
        raise SimulatedCrash


def test_a_crash_between_send_and_receipt_reconciles_through_the_status_query(
    service: TencentSmsEmulator, tmp_path: Path
) -> None:
    clock = VirtualClock()
    service.clock = clock.now
    store = tmp_path / "service.sqlite3"
    mobiles = [f"1391234567{i}" for i in range(3)]
    options: dict[str, Any] = {
        "secret_id": service.secret_id,
        "secret_key": service.secret_key,
        "sdk_app_id": service.sdk_app_id,
        "callback_token": service.callback_token,
        "sign_name": "武汉中院",
        "template_id": "1234567",
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
    sent_before = {m.session_context for m in service.messages}
    assert sent_before
    for context in sent_before:
        service.deliver(context, push=False)  # the reports come in while the engine is down

    async def after_the_restart() -> None:
        clock.advance(EngineConfig().lease + timedelta(seconds=1))
        async with client_for(TencentSmsChannel(service.url, **options), clock, str(store)) as client:
            await client.run_until_idle(until=clock.now() + timedelta(hours=1))
            for context in {m.session_context for m in service.messages} - sent_before:
                service.deliver(context, push=False)
            await client.run_until_idle()
            for task_id in task_ids:
                status = client.status(task_id)
                assert status.state is TaskState.FILED
                assert status.method is ServiceMethod.ELECTRONIC

    run(after_the_restart())
    assert len(service.messages) == 3
    assert all(len(service.messages_for(c)) == 1 for c in sent_before)  # none sent twice
    assert "PullSmsSendStatusByPhoneNumber" in service.queries


def test_engine_permanent_failure_falls_back_to_post(service: TencentSmsEmulator) -> None:
    async def scenario() -> None:
        h = Harness(extra_plugins=[channels_plugin(service.channel(sign_name="错"))], kinds={ChannelKind.ESERVICE})
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(make_party(mobile=MOBILE)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.method is ServiceMethod.POSTAL
        assert status.dispatches[0].detail == (
            "tencent-sms: refused by Tencent Cloud SMS (FailedOperation.SignatureIncorrectOrUnapproved)"
        )
        await h.aclose()

    run(scenario())


# -- the entry points ----------------------------------------------------------------------------------


FULL_ENV = {
    ENV["secret_id"]: "AKID-key",
    ENV["secret_key"]: "key-secret",
    ENV["sdk_app_id"]: "1400006666",
    ENV["sign_name"]: "武汉中院",
    ENV["template_id"]: "1234567",
    ENV["link_template"]: "https://ssfw.court.example/s/{token}",
    ENV["callback_token"]: "cb-token",
    ENV["rate"]: "50",
}


def test_register_channels_entry_points_are_installed() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "tencent-sms"]
    assert entry.load() is plugin
    [emulator] = [e for e in importlib.metadata.entry_points(group="delivery_sdk.emulators") if e.name == "tencent-sms"]
    assert emulator.load() is sandbox


def test_register_channels_registers_nothing_unless_configured() -> None:
    host = PluginHost([EnvTencentSmsPlugin({})], load_entry_points=False)
    assert "tencent-sms" not in [c.name for c in host.channels]


def test_register_channels_from_the_environment() -> None:
    host = PluginHost([EnvTencentSmsPlugin(FULL_ENV)], load_entry_points=False)
    channel = host.channels.get("tencent-sms")
    assert isinstance(channel, TencentSmsChannel)
    assert channel.base_url == "https://sms.tencentcloudapi.com"
    assert channel.region == "ap-guangzhou"
    assert channel.limiter.rate == 50.0
    assert "key-secret" not in repr(channel)
    run(channel.aclose())


def test_register_channels_partial_configuration_names_every_missing_variable() -> None:
    partial = {ENV["sign_name"]: "武汉中院", ENV["timeout"]: "0"}
    host = PluginHost([EnvTencentSmsPlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for key in ("secret_id", "secret_key", "sdk_app_id", "template_id", "link_template", "callback_token"):
        assert ENV[key] in problems, key
    assert "DELIVERY_SDK_TENCENT_SMS_TIMEOUT must be positive" in problems


def test_the_sandbox_pushes_to_the_receiver_base(collector: Collector) -> None:
    base = collector.url.rsplit("/", 1)[0]
    with sandbox(callback_url=base) as emulator:
        channel = EnvTencentSmsPlugin(emulator.sandbox_env()).configured()
        assert channel is not None
        run(using(channel, lambda c: c.send(dispatch())))
        emulator.wait_pushes()
    [(path, _, body)] = collector.received
    assert path.startswith("/callbacks/tencent-sms?token=")
    assert json.loads(body)[0]["report_status"] == "SUCCESS"


def test_signed_request_is_what_the_signing_module_computes() -> None:
    channel = TencentSmsChannel(
        "http://127.0.0.1:9",
        secret_id="AKID",
        secret_key="s",
        sdk_app_id="1400000001",
        sign_name="法院",
        template_id="1",
        link_template="https://court.example/s/{token}",
        callback_token="t",
    )
    headers, body = channel.signed_request("SendSms", {"A": "1"}, timestamp=1_800_000_000)
    assert headers["Host"] == "127.0.0.1:9"
    expected = signing.authorization(
        "AKID", "s", "sms", 1_800_000_000, headers, body, signed=("content-type", "host", "x-tc-action")
    )
    assert headers["Authorization"] == expected
    run(channel.aclose())
