"""The SMS gateway channel against its emulator, over a real socket on 127.0.0.1.

Run after ``pip install -e plugins/delivery-sdk-sms`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from delivery_sdk_sms import ENV, EnvSmsPlugin, SmsChannel, callback_signature, link_token, plugin
from delivery_sdk_sms.emulator import Fault, SmsGatewayEmulator

from delivery_sdk import (
    AsyncDeliveryClient,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    DeliveryClient,
    Dispatch,
    EngineConfig,
    IngestOutcome,
    MalformedReceipt,
    PluginError,
    ReceiptKind,
    ServiceMethod,
    SQLiteStore,
    TaskState,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.model import Contact, ContactKind
from delivery_sdk.plugins import PluginHost
from delivery_sdk.retry import RetryConfig, call_with_retries
from delivery_sdk.testing import Harness, Outcome, channels_plugin, make_party, make_request

MOBILE = "13912345678"
NAME = "李四光"


@pytest.fixture
def gateway() -> Iterator[SmsGatewayEmulator]:
    with SmsGatewayEmulator() as emulator:
        yield emulator


def dispatch(dispatch_id: str = "T1.1", mobile: str = MOBILE) -> Dispatch:
    request = make_request(make_party(mobile=mobile))
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value=mobile),
        case=request.case,
        recipient_name=NAME,
        documents=request.documents,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def using(channel: SmsChannel, coro_fn: Any) -> Any:
    async with channel:
        return await coro_fn(channel)


# -- sending -------------------------------------------------------------------------------------------


def test_send_success_carries_only_a_link_and_the_idempotency_key(gateway: SmsGatewayEmulator) -> None:
    channel = gateway.channel()
    result = run(using(channel, lambda c: c.send(dispatch("T1.1"))))
    assert result.accepted
    message = gateway.messages["T1.1"]
    assert result.provider_ref == message.biz_id
    assert message.phone_numbers == MOBILE  # the addressee, and nowhere else
    token = link_token(channel._link_key, "T1.1")
    assert message.template_param == {
        "court": "武汉市武昌区人民法院",
        "case_no": "(2026)鄂0106民初1号",
        "url": f"https://ssfw.court.example/s/{token}",
    }
    text = json.dumps(message.template_param, ensure_ascii=False)
    assert NAME not in text
    assert MOBILE not in text
    assert "T1.1" not in text
    assert "传票" not in text
    assert len(token) == 22
    assert token != link_token(channel._link_key, "T1.2")
    assert gateway.rejected == []  # every request was properly signed


def test_send_is_idempotent_on_the_dispatch_id(gateway: SmsGatewayEmulator) -> None:
    async def twice(channel: SmsChannel) -> tuple[Any, Any]:
        return await channel.send(dispatch("T1.1")), await channel.send(dispatch("T1.1"))

    first, second = run(using(gateway.channel(), twice))
    assert first.provider_ref == second.provider_ref
    assert gateway.attempts_for("T1.1") == 2
    assert len(gateway.messages) == 1


def test_permanent_failure_is_a_refusal_without_personal_data(gateway: SmsGatewayEmulator) -> None:
    gateway.refuse_numbers.add(MOBILE)
    result = run(using(gateway.channel(), lambda c: c.send(dispatch())))
    assert not result.accepted
    assert result.reason == "sms: refused by the gateway (isv.MOBILE_NUMBER_ILLEGAL)"
    assert gateway.messages == {}
    gateway.fail_next(Fault.refuse("isv.BLACK_KEY_CONTROL_LIMIT"))
    result = run(using(gateway.channel(), lambda c: c.send(dispatch("T2.1", "13700000000"))))
    assert result.reason == "sms: refused by the gateway (isv.BLACK_KEY_CONTROL_LIMIT)"


def test_a_bad_signature_is_a_permanent_channel_error(gateway: SmsGatewayEmulator) -> None:
    channel = gateway.channel(access_key_secret="not-the-secret")
    with pytest.raises(ChannelError, match="HTTP 401") as caught:
        run(using(channel, lambda c: c.send(dispatch())))
    assert not isinstance(caught.value, TransientChannelError)
    assert gateway.rejected == ["SignatureDoesNotMatch"]
    assert gateway.attempts == []


def test_a_non_mobile_contact_is_refused_before_any_request(gateway: SmsGatewayEmulator) -> None:
    wrong = attrs.evolve(dispatch(), contact=Contact(kind=ContactKind.EMAIL, value="a@example.com"))
    with pytest.raises(ChannelError, match="no mobile number"):
        run(using(gateway.channel(), lambda c: c.send(wrong)))
    assert gateway.attempts == []


def test_timeout_is_transient_and_status_finds_the_message(gateway: SmsGatewayEmulator) -> None:
    gateway.fail_next(Fault.timeout(0.8))

    async def scenario(channel: SmsChannel) -> Any:
        with pytest.raises(TransientChannelError, match=r"timed out \(ReadTimeout\)"):
            await channel.send(dispatch())
        return await channel.status(dispatch())

    report = run(using(gateway.channel(timeout=0.3), scenario))
    assert report.found
    assert report.provider_ref == gateway.messages["T1.1"].biz_id
    assert report.receipts == ()


@pytest.mark.parametrize("fault", [Fault.http(500), Fault.http(503), Fault.http(502, retry_after="1")])
def test_5xx_is_transient(gateway: SmsGatewayEmulator, fault: Fault) -> None:
    gateway.fail_next(fault)
    with pytest.raises(TransientChannelError, match=f"HTTP {fault.status}") as caught:
        run(using(gateway.channel(), lambda c: c.send(dispatch())))
    assert caught.value.retry_after == (1.0 if fault.retry_after else None)
    assert gateway.messages == {}


def test_429_and_flow_control_carry_retry_after(gateway: SmsGatewayEmulator) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    gateway.fail_next(Fault.rate_limited("4"), Fault.rate_limited(later), Fault.busy("2"), Fault.busy())

    async def scenario(channel: SmsChannel) -> list[float | None]:
        waits = []
        for _ in range(4):
            with pytest.raises(TransientChannelError) as caught:
                await channel.send(dispatch())
            waits.append(caught.value.retry_after)
        return waits

    waits = run(using(gateway.channel(), scenario))
    assert waits[0] == 4.0
    assert waits[1] is not None
    assert 25 <= waits[1] <= 30
    assert waits[2:] == [2.0, 1.0]  # flow control without Retry-After waits at least a second


def test_retry_after_drives_the_retry_wait(gateway: SmsGatewayEmulator) -> None:
    """The 429's Retry-After reaches delivery_sdk.retry, which waits that long before the next attempt."""
    gateway.fail_next(Fault.rate_limited("3"))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario(channel: SmsChannel) -> Any:
        return await call_with_retries("sms.send", lambda: channel.send(dispatch()), sleep=sleep)

    result = run(using(gateway.channel(), scenario))
    assert result.accepted
    assert slept == [3.0]
    assert gateway.attempts_for("T1.1") == 2


def test_status_of_a_dispatch_never_received(gateway: SmsGatewayEmulator) -> None:
    report = run(using(gateway.channel(), lambda c: c.status(dispatch("T9.1"))))
    assert not report.found
    assert gateway.queries == ["T9.1"]


def test_status_reports_the_delivery(gateway: SmsGatewayEmulator) -> None:
    async def scenario(channel: SmsChannel) -> Any:
        await channel.send(dispatch())
        gateway.deliver("T1.1", success=False, err_code="MK:0012")
        return await channel.status(dispatch())

    report = run(using(gateway.channel(), scenario))
    [receipt] = report.receipts
    assert receipt.kind is ReceiptKind.FAILED
    assert receipt.reason == "sms: not delivered (MK:0012)"
    assert receipt.provider_event_id == gateway.messages["T1.1"].reports[0]["report_id"]


def test_status_5xx_is_transient(gateway: SmsGatewayEmulator) -> None:
    gateway.fail_next_query(Fault.http(503, retry_after="2"))
    with pytest.raises(TransientChannelError) as caught:
        run(using(gateway.channel(), lambda c: c.status(dispatch())))
    assert caught.value.retry_after == 2.0


def test_rate_limit_spaces_requests(gateway: SmsGatewayEmulator) -> None:
    async def scenario(channel: SmsChannel) -> float:
        start = time.monotonic()
        await asyncio.gather(*(channel.send(dispatch(f"T{i}.1")) for i in range(5)))
        return time.monotonic() - start

    elapsed = run(using(gateway.channel(rate=25.0), scenario))
    assert elapsed >= 0.15  # four waits of 40 ms after the first
    assert len(gateway.messages) == 5


def test_injectable_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": "OK", "biz_id": "b-1"})

    channel = SmsChannel(
        "https://sms.example",
        access_key_id="k",
        access_key_secret="s",
        sign_name="法院",
        template_code="SMS_1",
        link_template="https://court.example/s/{token}",
        callback_secret="c",
        transport=httpx.MockTransport(handler),
    )
    result = run(using(channel, lambda c: c.send(dispatch())))
    assert result.provider_ref == "b-1"
    assert seen[0].headers["Idempotency-Key"] == "T1.1"
    assert len(seen[0].headers["X-Sms-Signature"]) == 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"link_template": "https://court.example/s/"}, "{token}"),
        ({"access_key_secret": ""}, "access_key_secret"),
        ({"timeout": 0}, "positive"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {
        "access_key_id": "k",
        "access_key_secret": "s",
        "sign_name": "法院",
        "template_code": "SMS_1",
        "link_template": "https://court.example/s/{token}",
        "callback_secret": "c",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        SmsChannel("https://sms.example", **options)


# -- callbacks -----------------------------------------------------------------------------------------


class Collector:
    """Where the gateway pushes delivery reports: a real HTTP endpoint on 127.0.0.1."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/sms"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_pushed_delivery_report_is_verified_and_parsed(gateway: SmsGatewayEmulator) -> None:
    collector = Collector()
    gateway.callback_url = collector.url
    try:
        channel = gateway.channel()
        run(using(channel, lambda c: c.send(dispatch())))
        gateway.deliver("T1.1")
    finally:
        collector.close()
    assert gateway.pushes == [200]
    [(headers, body)] = collector.received
    key = channel.verify_callback(headers, body, datetime.now(UTC))
    assert key == f"sms:{headers['X-Sms-Nonce']}"
    assert channel.verify_callback(headers, body, datetime.now(UTC)) == key  # stable: the receiver spots replays
    [receipt] = channel.parse_callback(headers, body)
    assert receipt.kind is ReceiptKind.DELIVERED
    assert receipt.dispatch_id == "T1.1"
    assert receipt.provider_event_id == gateway.messages["T1.1"].reports[0]["report_id"]


def test_forged_and_stale_callbacks_are_rejected(gateway: SmsGatewayEmulator) -> None:
    channel = gateway.channel()
    run(using(channel, lambda c: c.send(dispatch())))
    headers, body = gateway.deliver("T1.1")
    now = datetime.now(UTC)
    forged_body = body.replace(b"DELIVERED", b"FAILED")
    with pytest.raises(CallbackRejected) as caught:
        channel.verify_callback(headers, forged_body, now)
    assert caught.value.reason == "forged"
    with pytest.raises(MalformedReceipt, match="signature does not match"):
        channel.parse_callback(headers, forged_body)
    unsigned = {k: v for k, v in headers.items() if k != "X-Sms-Signature"}
    with pytest.raises(CallbackRejected, match="no signature"):
        channel.verify_callback(unsigned, body, now)
    other_key = SmsGatewayEmulator(callback_secret="someone-else")
    with pytest.raises(CallbackRejected, match="forged"):
        channel.verify_callback(*other_key.signed_callback(json.loads(body)), now)
    with pytest.raises(CallbackRejected) as caught:
        channel.verify_callback(headers, body, now + timedelta(minutes=6))  # replayed after the window
    assert caught.value.reason == "stale"
    # a genuine but old push re-signed with a new timestamp is a different request: a new replay key
    h1, b1 = gateway.signed_callback(json.loads(body))
    h2, b2 = gateway.signed_callback(json.loads(body))
    assert channel.verify_callback(h1, b1, now) != channel.verify_callback(h2, b2, now)


@pytest.mark.parametrize("raw", [b'[{"status": "DELIVERED"}]', b'{"status": "WHAT"}', b"[1, 2]", b"not json"])
def test_malformed_reports_are_refused(gateway: SmsGatewayEmulator, raw: bytes) -> None:
    channel = gateway.channel()
    with pytest.raises(MalformedReceipt):
        channel.parse_callback(*_resign(gateway, raw))
    run(channel.aclose())


def _resign(gateway: SmsGatewayEmulator, raw: bytes) -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time()))
    return {
        "X-Sms-Timestamp": ts,
        "X-Sms-Nonce": "n-1",
        "X-Sms-Signature": callback_signature(gateway.callback_secret, ts, "n-1", raw),
    }, raw


# -- through the engine --------------------------------------------------------------------------------


def client_for(channel: SmsChannel, clock: VirtualClock, **kwargs: Any) -> AsyncDeliveryClient:
    return AsyncDeliveryClient(
        SQLiteStore(":memory:"), plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False, **kwargs
    )


def test_engine_served_by_pushed_report_and_duplicate_callback(gateway: SmsGatewayEmulator) -> None:
    clock = VirtualClock()
    gateway.clock = clock.now

    async def scenario() -> None:
        async with client_for(gateway.channel(), clock) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now())
            [d] = client.status(task_id).dispatches
            assert (d.channel, d.status.value) == ("sms", "sent")
            delivered_at = clock.advance(timedelta(minutes=1))
            headers, body = gateway.deliver(d.dispatch_id)
            [first] = await client.ingest_callback("sms", headers, body)
            assert first.outcome is IngestOutcome.ACCEPTED
            [again] = await client.ingest_callback("sms", headers, body)  # the gateway pushes it again
            assert again.outcome is IngestOutcome.DUPLICATE
            with pytest.raises(MalformedReceipt):
                await client.ingest_callback("sms", headers, body.replace(b"DELIVERED", b"FAILED"))
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            assert status.served_at == delivered_at
            assert gateway.attempts_for(d.dispatch_id) == 1

    run(scenario())


def test_engine_retries_a_5xx_with_the_same_idempotency_key(gateway: SmsGatewayEmulator) -> None:
    clock = VirtualClock()
    gateway.auto_deliver = True
    gateway.clock = clock.now
    gateway.fail_next(Fault.http(503), Fault.http(500))

    async def scenario() -> None:
        async with client_for(gateway.channel(), clock) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            [d] = status.dispatches
            assert gateway.attempts == [d.dispatch_id] * 3
            assert list(gateway.messages) == [d.dispatch_id]

    run(scenario())


def test_engine_honours_retry_after_on_429(gateway: SmsGatewayEmulator) -> None:
    clock = VirtualClock()
    gateway.fail_next(Fault.rate_limited("3"))

    async def scenario() -> None:
        async with client_for(gateway.channel(), clock) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            start = clock.now()
            await client.run_until_idle(until=start)  # no due time passes: only the retry's wait moves the clock
            assert clock.now() - start == timedelta(seconds=3)
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            assert gateway.attempts_for(d.dispatch_id) == 2

    run(scenario())


def test_engine_timeout_in_doubt_is_reconciled_not_resent(gateway: SmsGatewayEmulator) -> None:
    clock = VirtualClock()
    gateway.fail_next(Fault.timeout(0.8))
    config = EngineConfig(retry=RetryConfig(attempts=1))  # the timeout leaves the dispatch in doubt at once

    async def scenario() -> None:
        async with client_for(gateway.channel(timeout=0.3), clock, config=config) as client:
            task_id = await client.submit(make_request(make_party(mobile=MOBILE)))
            await client.run_until_idle(until=clock.now() + timedelta(minutes=10))
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            record = client.task(task_id).dispatch(d.dispatch_id)
            assert record is not None
            assert record.provider_ref == gateway.messages[d.dispatch_id].biz_id
            assert gateway.attempts_for(d.dispatch_id) == 1  # asked, not sent again
            assert d.dispatch_id in gateway.queries

    run(scenario())


def test_engine_permanent_failure_falls_back_to_post(gateway: SmsGatewayEmulator) -> None:
    gateway.refuse_numbers.add(MOBILE)

    async def scenario() -> None:
        h = Harness(extra_plugins=[channels_plugin(gateway.channel())], kinds={ChannelKind.ESERVICE})
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(make_party(mobile=MOBILE)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        first = status.dispatches[0]
        assert (first.channel, first.status.value) == ("sms", "failed")
        assert first.detail == "sms: refused by the gateway (isv.MOBILE_NUMBER_ILLEGAL)"
        await h.aclose()

    run(scenario())


class SimulatedCrash(BaseException):
    """The process dies: nothing after the raise runs, nothing is committed."""


class CrashAfterSend(SmsChannel):
    async def send(self, dispatch: Dispatch) -> Any:
        await super().send(dispatch)  # the gateway has the message...
        raise SimulatedCrash  # ...and the engine never learns it


def test_status_after_a_crash_reconciles_instead_of_resending(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    clock = VirtualClock()
    gateway.clock = clock.now
    gateway.auto_deliver = True
    store = tmp_path / "service.sqlite3"
    options: dict[str, Any] = {
        "access_key_id": gateway.access_key_id,
        "access_key_secret": gateway.access_key_secret,
        "callback_secret": gateway.callback_secret,
        "sign_name": "法院",
        "template_code": "SMS_1",
        "link_template": "https://court.example/s/{token}",
    }

    async def before_the_crash() -> list[str]:
        client = AsyncDeliveryClient(
            str(store),
            plugins=[channels_plugin(CrashAfterSend(gateway.url, **options))],
            clock=clock,
            load_entry_points=False,
        )
        ids = await client.submit_many([make_request(make_party(f"P{i}", mobile=MOBILE)) for i in range(3)])
        with pytest.raises(SimulatedCrash):
            await client.run_until_idle()
        # the other sends of the step were in flight; let them end (each crashes too) before closing
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)
        await client.aclose()
        return ids

    task_ids = run(before_the_crash())
    assert len(gateway.messages) >= 1  # at least one send reached the gateway before the crash

    async def after_the_restart() -> None:
        clock.advance(EngineConfig().lease + timedelta(seconds=1))  # the dead engine's lease runs out
        async with AsyncDeliveryClient(
            str(store),
            plugins=[channels_plugin(SmsChannel(gateway.url, **options))],
            clock=clock,
            load_entry_points=False,
        ) as client:
            await client.run_until_idle()
            for task_id in task_ids:
                status = client.status(task_id)
                assert status.state is TaskState.FILED
                assert len(status.dispatches) == 1
                assert status.method is ServiceMethod.ELECTRONIC

    run(after_the_restart())
    assert len(gateway.messages) == 3
    assert all(gateway.attempts_for(out_id) == 1 for out_id in gateway.messages)  # each dispatch sent once


def test_delivery_client_runs_a_population_through_a_flaky_gateway() -> None:
    clock = VirtualClock()
    with SmsGatewayEmulator(auto_deliver=True, transient_rate=0.3, seed=7, clock=clock.now) as gateway:
        with DeliveryClient(
            ":memory:", plugins=[channels_plugin(gateway.channel())], clock=clock, load_entry_points=False
        ) as client:
            task_ids = client.submit_many([make_request(make_party(f"P{i:03d}", mobile=MOBILE)) for i in range(40)])
            client.run_until_idle()
            states = {client.status(t).state for t in task_ids}
            dispatch_ids = [d.dispatch_id for t in task_ids for d in client.status(t).dispatches]
        assert states == {TaskState.FILED}
        assert sorted(gateway.messages) == sorted(dispatch_ids)  # each dispatch accepted once
        assert len(gateway.attempts) > len(dispatch_ids)  # the 503s were retried...
        assert set(gateway.attempts) == set(dispatch_ids)  # ...always under the dispatch's own id


# -- the entry point -----------------------------------------------------------------------------------


FULL_ENV = {
    ENV["url"]: "https://sms.example",
    ENV["access_key_id"]: "key-id",
    ENV["access_key_secret"]: "key-secret",
    ENV["sign_name"]: "武汉中院",
    ENV["template_code"]: "SMS_0001",
    ENV["link_template"]: "https://ssfw.court.example/s/{token}",
    ENV["callback_secret"]: "cb-secret",
    ENV["rate"]: "50",
}


def test_register_channels_entry_point_is_installed() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "sms"]
    assert entry.load() is plugin


def test_register_channels_registers_nothing_unless_configured() -> None:
    host = PluginHost([EnvSmsPlugin({})], load_entry_points=False)
    assert "sms" not in [c.name for c in host.channels]


def test_register_channels_from_the_environment() -> None:
    host = PluginHost([EnvSmsPlugin(FULL_ENV)], load_entry_points=False)
    channel = host.channels.get("sms")
    assert isinstance(channel, SmsChannel)
    assert channel.limiter.rate == 50.0
    assert channel.sign_name == "武汉中院"
    assert "key-secret" not in repr(channel)
    run(channel.aclose())


def test_register_channels_half_configured_fails_loudly() -> None:
    env = {k: v for k, v in FULL_ENV.items() if k != ENV["callback_secret"]}
    with pytest.raises(PluginError, match="DELIVERY_SDK_SMS_CALLBACK_SECRET"):
        EnvSmsPlugin(env).configured()
    with pytest.raises(PluginError, match="DELIVERY_SDK_SMS_RATE must be a number"):
        EnvSmsPlugin({**FULL_ENV, ENV["rate"]: "fast"}).configured()
    # the channel's own ValueError surfaces as a PluginError, its message kept
    with pytest.raises(PluginError, match=r"not usable: link_template must contain '\{token\}'"):
        EnvSmsPlugin({**FULL_ENV, ENV["link_template"]: "https://court.example/s/"}).configured()


def test_register_channels_partial_configuration_names_every_missing_variable() -> None:
    partial = {ENV["sign_name"]: "武汉中院", ENV["timeout"]: "0"}  # no URL: still configured, in part
    host = PluginHost([EnvSmsPlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for key in ("url", "access_key_id", "access_key_secret", "template_code", "link_template", "callback_secret"):
        assert ENV[key] in problems, key
    assert "DELIVERY_SDK_SMS_TIMEOUT must be positive" in problems
    assert ENV["sign_name"] + " " not in problems


def test_register_channels_reads_the_hosts_environ() -> None:
    host = PluginHost([EnvSmsPlugin()], load_entry_points=False, environ=FULL_ENV)
    channel = host.channels.get("sms")
    assert isinstance(channel, SmsChannel)
    run(channel.aclose())
