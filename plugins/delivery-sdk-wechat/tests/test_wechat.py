"""The WeChat official-account channel against its emulator, over a real socket on 127.0.0.1.

Run after ``pip install -e plugins/delivery-sdk-wechat`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from delivery_sdk_wechat import (
    ENV,
    EnvWeChatPlugin,
    SentLog,
    WeChatChannel,
    link_token,
    plugin,
    read_callback,
    wechat_signature,
)
from delivery_sdk_wechat.emulator import Fault, WeChatEmulator

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
    SystemClock,
    TaskState,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.callbacks import CallbackReceiver, CallbackResponse, asgi_app
from delivery_sdk.model import Contact, ContactKind
from delivery_sdk.plugins import PluginHost
from delivery_sdk.retry import RetryConfig
from delivery_sdk.testing import channels_plugin, make_party, make_request

OPENID = "oWx_9f3a-Kq2Lr7pT1sVb8cD4eF"
NAME = "李四光"
READ_SECRET = "emulator-read-secret"


@pytest.fixture
def wechat() -> Iterator[WeChatEmulator]:
    with WeChatEmulator() as emulator:
        yield emulator


def dispatch(dispatch_id: str = "T1.1", openid: str = OPENID) -> Dispatch:
    request = make_request(make_party(mobile=None, wechat=openid))
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="wechat",
        kind=ChannelKind.WECHAT,
        contact=Contact(kind=ContactKind.WECHAT, value=openid),
        case=request.case,
        recipient_name=NAME,
        documents=request.documents,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def using(channel: WeChatChannel, fn: Any) -> Any:
    async with channel:
        return await fn(channel)


class Collector:
    """Where WeChat pushes events: a real HTTP endpoint; keeps the query parameters and the body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector.received.append((dict(parse_qsl(urlsplit(self.path).query)), body))
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/wechat"

    def take(self) -> list[tuple[dict[str, str], bytes]]:
        out, self.received = self.received, []
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


# -- sending and the access token ----------------------------------------------------------------------


def test_send_success_with_client_msg_id_and_only_a_link(wechat: WeChatEmulator) -> None:
    channel = wechat.channel()
    result = run(using(channel, lambda c: c.send(dispatch())))
    message = wechat.message("T1.1")
    assert result.accepted
    assert result.provider_ref == str(message.msgid)
    assert message.touser == OPENID
    assert message.url == f"https://ssfw.court.example/w/{link_token(channel._link_key, 'T1.1')}"
    assert message.data == {
        "first": {"value": "您有一份法院文书待查收"},
        "keyword1": {"value": "武汉市武昌区人民法院"},
        "keyword2": {"value": "(2026)鄂0106民初1号"},
        "remark": {"value": "请点击查看并签收"},
    }
    text = json.dumps([message.data, message.url], ensure_ascii=False)
    assert NAME not in text
    assert OPENID not in text
    assert "T1.1" not in text


def test_token_is_fetched_once_for_concurrent_sends_and_cached(wechat: WeChatEmulator) -> None:
    async def scenario(channel: WeChatChannel) -> None:
        await asyncio.gather(*(channel.send(dispatch(f"T{i}.1")) for i in range(10)))
        await channel.send(dispatch("T99.1"))

    run(using(wechat.channel(), scenario))
    assert wechat.token_requests == 1
    assert len(wechat.messages) == 11


def test_token_is_refreshed_a_little_before_it_expires(wechat: WeChatEmulator) -> None:
    now = [1000.0]
    wechat.token_ttl = 7200

    async def scenario(channel: WeChatChannel) -> list[str]:
        tokens = [await channel.access_token()]
        now[0] += 7200 - 301  # still inside the 300 s margin's safe side
        tokens.append(await channel.access_token())
        now[0] += 2  # within 300 s of expiry: refreshed early
        tokens.append(await channel.access_token())
        return tokens

    tokens = run(using(wechat.channel(monotonic=lambda: now[0]), scenario))
    assert tokens[0] == tokens[1]
    assert wechat.token_requests == 2  # asked again in the margin (in normal mode: WeChat renews it if due)
    assert wechat.forced_refreshes == 0


def test_expired_token_is_refreshed_once_and_the_send_retried(wechat: WeChatEmulator) -> None:
    async def scenario(channel: WeChatChannel) -> Any:
        await channel.send(dispatch("T1.1"))
        wechat.expire_tokens()  # WeChat ended the token early (another server fetched one, say)
        return await channel.send(dispatch("T2.1"))

    result = run(using(wechat.channel(), scenario))
    assert result.accepted
    assert wechat.refused_tokens == [42001]
    assert wechat.token_requests == 2  # normal mode gives the new token: nothing forced
    assert wechat.forced_refreshes == 0
    assert wechat.attempts_for("T2.1") == 1


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_each_token_errcode_triggers_one_refresh(wechat: WeChatEmulator, errcode: int) -> None:
    wechat.fail_next(Fault.errcode(errcode))
    result = run(using(wechat.channel(), lambda c: c.send(dispatch())))
    assert result.accepted
    # WeChat still holds the refused token as current: normal mode answers it again, so the adapter forces
    assert wechat.token_requests == 3
    assert wechat.forced_refreshes == 1
    assert wechat.attempts_for("T1.1") == 2  # the refused attempt, then the retry with the new token


def test_a_token_refused_twice_is_transient(wechat: WeChatEmulator) -> None:
    wechat.fail_next(Fault.errcode(42001), Fault.errcode(42001))
    with pytest.raises(TransientChannelError, match="fresh access token was refused too"):
        run(using(wechat.channel(), lambda c: c.send(dispatch())))
    assert (wechat.token_requests, wechat.forced_refreshes) == (3, 1)


def test_wrong_app_secret_is_a_permanent_error(wechat: WeChatEmulator) -> None:
    channel = WeChatChannel(
        wechat.appid,
        "wrong-secret",
        template_id="TPL",
        link_template="https://c.example/w/{token}",
        server_token="t",
        read_secret="r",
        base_url=wechat.url,
    )
    with pytest.raises(ChannelError, match=r"access token refused \(errcode 40125, invalid appsecret\)") as caught:
        run(using(channel, lambda c: c.send(dispatch())))
    assert not isinstance(caught.value, TransientChannelError)
    assert wechat.attempts == []


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [(Fault.errcode(-1), None), (Fault.errcode(45009), 60.0), (Fault.http(503), None), (Fault.http(429, "5"), 5.0)],
)
def test_transient_answers(wechat: WeChatEmulator, fault: Fault, retry_after: float | None) -> None:
    wechat.fail_next(fault)
    with pytest.raises(TransientChannelError) as caught:
        run(using(wechat.channel(), lambda c: c.send(dispatch())))
    assert caught.value.retry_after == retry_after
    assert wechat.messages == {}


@pytest.mark.parametrize(
    ("errcode", "reason"),
    [
        (43004, "wechat: not subscribed (errcode 43004)"),
        (40003, "wechat: invalid openid (errcode 40003)"),
        (99999, "wechat: refused (errcode 99999)"),
    ],
)
def test_permanent_errcodes_are_refusals(wechat: WeChatEmulator, errcode: int, reason: str) -> None:
    wechat.fail_next(Fault.errcode(errcode))

    async def scenario(channel: WeChatChannel) -> Any:
        result = await channel.send(dispatch())
        return result, await channel.status(dispatch())

    result, report = run(using(wechat.channel(), scenario))
    assert not result.accepted
    assert result.reason == reason
    assert not report.found  # nothing went out


def test_not_subscribed_through_the_emulator(wechat: WeChatEmulator) -> None:
    wechat.unsubscribed.add(OPENID)
    result = run(using(wechat.channel(), lambda c: c.send(dispatch())))
    assert result.reason == "wechat: not subscribed (errcode 43004)"
    assert OPENID not in (result.reason or "")


def test_timeout_then_status_within_the_dedup_window(wechat: WeChatEmulator) -> None:
    wechat.fail_next(Fault.timeout(0.8))
    clock = VirtualClock()

    async def scenario(channel: WeChatChannel) -> Any:
        with pytest.raises(TransientChannelError, match="timed out"):
            await channel.send(dispatch())
        early = await channel.status(dispatch())
        clock.advance(timedelta(minutes=11))
        late = await channel.status(dispatch())
        return early, late

    early, late = run(using(wechat.channel(timeout=0.3, clock=clock), scenario))
    assert not early.found  # a resend is safe: WeChat de-duplicates client_msg_id
    assert late.found  # past the window: assume it went out rather than risk a second message
    assert late.provider_ref is None


# -- callbacks -----------------------------------------------------------------------------------------


def test_delivery_event_pushed_verified_parsed_and_kept(wechat: WeChatEmulator, collector: Collector) -> None:
    wechat.callback_url = collector.url
    channel = wechat.channel()

    async def scenario(channel: WeChatChannel) -> Any:
        await channel.send(dispatch())
        wechat.deliver("T1.1")
        [(params, body)] = collector.take()
        assert params["openid"] == OPENID  # WeChat's query: signature, timestamp, nonce, openid
        key = channel.verify_callback({}, body, datetime.now(UTC), query=params)
        assert key == channel.verify_callback({}, body, datetime.now(UTC), query=params)  # stable replay key
        assert key == f"wechat:{params['timestamp']}:{params['nonce']}"
        receipts = channel.parse_callback({}, body, query=params)
        return receipts, await channel.status(dispatch())

    [receipt], report = run(using(channel, scenario))
    assert wechat.pushes == [200]
    assert receipt.kind is ReceiptKind.DELIVERED
    assert receipt.dispatch_id == "T1.1"
    assert receipt.provider_event_id == f"tmpl:{wechat.message('T1.1').msgid}"
    assert report.receipts == (receipt,)  # status() now knows it too


def test_failed_delivery_event(wechat: WeChatEmulator) -> None:
    async def scenario(channel: WeChatChannel) -> Any:
        await channel.send(dispatch())
        params, body = wechat.deliver("T1.1", "failed:user block")
        return channel.parse_callback({}, body, query=params)

    [receipt] = run(using(wechat.channel(), scenario))
    assert receipt.kind is ReceiptKind.FAILED
    assert receipt.reason == "wechat: not delivered (user block)"


def test_event_signature_is_read_from_the_query_only(wechat: WeChatEmulator) -> None:
    async def scenario(channel: WeChatChannel) -> None:
        await channel.send(dispatch())
        params, body = wechat.deliver("T1.1")
        now = datetime.now(UTC)
        assert channel.verify_callback({"Content-Type": "text/xml"}, body, now, query=params).startswith("wechat:")
        for headers in (params, {f"X-WeChat-{k.capitalize()}": v for k, v in params.items()}):
            with pytest.raises(CallbackRejected, match="no signature"):
                channel.verify_callback(headers, body, now)  # the same values as headers: not WeChat's shape
            with pytest.raises(MalformedReceipt, match="no signature"):
                channel.parse_callback(headers, body)

    run(using(wechat.channel(), scenario))


def test_forged_and_stale_events_are_rejected(wechat: WeChatEmulator) -> None:
    async def scenario(channel: WeChatChannel) -> None:
        await channel.send(dispatch())
        params, body = wechat.deliver("T1.1")
        now = datetime.now(UTC)
        wrong = wechat_signature("not-the-server-token", params["timestamp"], params["nonce"])
        with pytest.raises(CallbackRejected) as caught:
            channel.verify_callback({}, body, now, query={**params, "signature": wrong})
        assert caught.value.reason == "forged"
        with pytest.raises(MalformedReceipt, match="signature does not match"):
            channel.parse_callback({}, body, query={**params, "signature": wrong})
        with pytest.raises(CallbackRejected, match="no signature"):
            channel.verify_callback({}, body, now, query={"timestamp": params["timestamp"]})
        moved = str(int(params["timestamp"]) + 1)  # a tampered timestamp breaks the signature
        with pytest.raises(CallbackRejected, match="forged"):
            channel.verify_callback({}, body, now, query={**params, "timestamp": moved})
        with pytest.raises(CallbackRejected) as caught:
            channel.verify_callback({}, body, now + timedelta(minutes=10), query=params)
        assert caught.value.reason == "stale"

    run(using(wechat.channel(), scenario))


def test_xml_with_entities_is_refused(wechat: WeChatEmulator) -> None:
    channel = wechat.channel()
    body = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><MsgType>&a;</MsgType></xml>'
    params, _ = wechat.event_push(OPENID, 1, "success")
    with pytest.raises(MalformedReceipt, match="DOCTYPE"):
        channel.parse_callback({}, body, query=params)
    run(channel.aclose())


def test_event_for_an_unknown_msgid_is_matched_by_openid_or_ignored(wechat: WeChatEmulator) -> None:
    wechat.fail_next(Fault.timeout(0.6))

    async def scenario(channel: WeChatChannel) -> Any:
        with pytest.raises(TransientChannelError):
            await channel.send(dispatch())  # the answer (and its msgid) is lost
        msgid = wechat.message("T1.1").msgid
        params, body = wechat.deliver("T1.1")
        [receipt] = channel.parse_callback({}, body, query=params)
        assert receipt.dispatch_id == "T1.1"  # the only unanswered send to that openid
        assert (await channel.status(dispatch())).provider_ref == str(msgid)
        params, body = wechat.event_push("o-stranger", 42, "success")
        return channel.parse_callback({}, body, query=params)

    assert run(using(wechat.channel(timeout=0.3), scenario)) == []


def test_read_callback_from_the_h5_page(wechat: WeChatEmulator) -> None:
    channel = wechat.channel()
    opened = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    headers, body = read_callback(READ_SECRET, channel._link_key, "T1.1", opened, event_id="ev-1")
    now = datetime.now(UTC)
    key = channel.verify_callback(headers, body, now)
    assert key == f"wechat:read:{headers['X-Court-Nonce']}"
    [receipt] = channel.parse_callback(headers, body)
    assert (receipt.kind, receipt.at, receipt.provider_event_id) == (ReceiptKind.READ, opened, "h5:ev-1")
    with pytest.raises(CallbackRejected, match="forged"):
        channel.verify_callback(headers, body.replace(b"T1.1", b"T2.1"), now)
    forged = read_callback("guessed-secret", channel._link_key, "T1.1", opened)
    with pytest.raises(CallbackRejected, match="forged"):
        channel.verify_callback(*forged, now)
    wrong_link = read_callback(READ_SECRET, "another-key", "T1.1", opened)  # signed, but not our link
    with pytest.raises(MalformedReceipt, match="not this dispatch's link"):
        channel.parse_callback(*wrong_link)
    stale = read_callback(READ_SECRET, channel._link_key, "T1.1", opened, timestamp=int(now.timestamp()) - 3600)
    with pytest.raises(CallbackRejected) as caught:
        channel.verify_callback(*stale, now)
    assert caught.value.reason == "stale"
    run(channel.aclose())


# -- through the engine --------------------------------------------------------------------------------


def client_for(channel: WeChatChannel, clock: VirtualClock, **kwargs: Any) -> AsyncDeliveryClient:
    return AsyncDeliveryClient(
        SQLiteStore(":memory:"), plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False, **kwargs
    )


def party_request(i: int = 0) -> Any:
    return make_request(make_party(f"P{i:03d}", mobile=None, wechat=f"{OPENID}{i}"))


def test_engine_delivered_and_read_with_duplicate_callbacks(wechat: WeChatEmulator) -> None:
    clock = VirtualClock()
    wechat.clock = clock.now

    async def scenario() -> None:
        channel = wechat.channel(clock=clock)
        async with client_for(channel, clock) as client:
            task_id = await client.submit(party_request())
            await client.run_until_idle(until=clock.now())
            [d] = client.status(task_id).dispatches
            assert (d.channel, d.status.value) == ("wechat", "sent")
            delivered_at = clock.advance(timedelta(minutes=1)).replace(microsecond=0)
            params, body = wechat.deliver(d.dispatch_id)
            [first] = await client.ingest_callback("wechat", {}, body, query=params)
            assert first.outcome is IngestOutcome.ACCEPTED
            [again] = await client.ingest_callback("wechat", {}, body, query=params)  # WeChat retries its pushes
            assert again.outcome is IngestOutcome.DUPLICATE
            opened = clock.advance(timedelta(minutes=5))
            read = read_callback(READ_SECRET, channel._link_key, d.dispatch_id, opened)
            [was_read] = await client.ingest_callback("wechat", *read)
            assert was_read.event_type == "dispatch.read"
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            assert status.served_at == delivered_at
            assert wechat.attempts_for(d.dispatch_id) == 1

    run(scenario())


def test_engine_honours_retry_after_on_429(wechat: WeChatEmulator) -> None:
    clock = VirtualClock()
    wechat.fail_next(Fault.http(429, "3"))

    async def scenario() -> None:
        async with client_for(wechat.channel(clock=clock), clock) as client:
            task_id = await client.submit(party_request())
            start = clock.now()
            await client.run_until_idle(until=start)
            assert clock.now() - start == timedelta(seconds=3)  # the Retry-After, and nothing else
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            assert wechat.attempts_for(d.dispatch_id) == 2

    run(scenario())


def test_engine_rate_limit_errcode_waits_and_retries(wechat: WeChatEmulator) -> None:
    clock = VirtualClock()
    wechat.fail_next(Fault.errcode(45009), Fault.errcode(-1))

    async def scenario() -> None:
        async with client_for(wechat.channel(clock=clock, rate_limit_wait=4.0), clock) as client:
            task_id = await client.submit(party_request())
            start = clock.now()
            await client.run_until_idle(until=start)
            assert clock.now() - start >= timedelta(seconds=4)
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            assert wechat.attempts_for(d.dispatch_id) == 3

    run(scenario())


def test_engine_timeout_is_resent_under_the_same_client_msg_id(wechat: WeChatEmulator) -> None:
    clock = VirtualClock()
    wechat.fail_next(Fault.timeout(0.8))
    config = EngineConfig(retry=RetryConfig(attempts=1))

    async def scenario() -> None:
        async with client_for(wechat.channel(timeout=0.3, clock=clock), clock, config=config) as client:
            task_id = await client.submit(party_request())
            await client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            [d] = client.status(task_id).dispatches
            assert d.status.value == "sent"
            assert wechat.attempts_for(d.dispatch_id) == 2  # in doubt, within the window: sent again...
            assert len(wechat.messages) == 1  # ...and WeChat kept one message

    run(scenario())


def test_engine_not_subscribed_fails_the_dispatch(wechat: WeChatEmulator) -> None:
    clock = VirtualClock()
    wechat.unsubscribed.add(f"{OPENID}0")

    async def scenario() -> None:
        async with client_for(wechat.channel(clock=clock), clock) as client:
            task_id = await client.submit(party_request())
            await client.run_until_idle(until=clock.now())
            [d] = client.status(task_id).dispatches
            assert (d.status.value, d.detail) == ("failed", "wechat: not subscribed (errcode 43004)")

    run(scenario())


class SimulatedCrash(BaseException):
    """The process dies: nothing after the raise runs, nothing is committed."""


class CrashAfterSend(WeChatChannel):
    async def send(self, dispatch: Dispatch) -> Any:
        await super().send(dispatch)
        raise SimulatedCrash


def test_status_after_a_crash_comes_from_the_sent_log(wechat: WeChatEmulator, tmp_path: Path) -> None:
    clock = VirtualClock()
    wechat.clock = clock.now
    store, sent_log = tmp_path / "service.sqlite3", tmp_path / "wechat-sent.sqlite3"
    options: dict[str, Any] = {
        "template_id": "TPL",
        "link_template": "https://c.example/w/{token}",
        "server_token": wechat.server_token,
        "read_secret": READ_SECRET,
        "base_url": wechat.url,
        "sent_log": sent_log,
        "clock": clock,
    }

    async def before_the_crash() -> list[str]:
        channel = CrashAfterSend(wechat.appid, wechat.secret, **options)
        client = AsyncDeliveryClient(
            str(store), plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False
        )
        ids = await client.submit_many([party_request(i) for i in range(3)])
        with pytest.raises(SimulatedCrash):
            await client.run_until_idle()
        # the other sends of the step were in flight; let them end (each crashes too) before closing
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)
        await client.aclose()
        return ids

    task_ids = run(before_the_crash())
    assert len(wechat.messages) >= 1

    async def after_the_restart() -> None:
        clock.advance(EngineConfig().lease + timedelta(seconds=1))
        channel = WeChatChannel(wechat.appid, wechat.secret, **options)
        async with AsyncDeliveryClient(
            str(store), plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False
        ) as client:
            await client.run_until_idle(until=clock.now() + timedelta(minutes=1))
            for task_id in task_ids:
                [d] = client.status(task_id).dispatches
                assert d.status.value == "sent"
                params, body = wechat.deliver(d.dispatch_id)
                [result] = await client.ingest_callback("wechat", {}, body, query=params)
                assert result.outcome is IngestOutcome.ACCEPTED
            await client.run_until_idle()
            assert {client.status(t).state for t in task_ids} == {TaskState.FILED}

    run(after_the_restart())
    assert len(wechat.messages) == 3
    assert all(wechat.attempts_for(m.client_msg_id) == 1 for m in wechat.messages.values())


def test_delivery_client_runs_a_population_through_a_flaky_wechat(collector: Collector) -> None:
    clock = VirtualClock()
    with WeChatEmulator(
        auto_deliver=True, transient_rate=0.3, seed=11, clock=clock.now, callback_url=collector.url
    ) as wechat:
        with DeliveryClient(
            ":memory:", plugins=[channels_plugin(wechat.channel(clock=clock))], clock=clock, load_entry_points=False
        ) as client:
            task_ids = client.submit_many([party_request(i) for i in range(30)])
            client.run_until_idle(until=clock.now())
            wechat.wait_pushes()
            pushes = collector.take()
            assert len(pushes) == 30
            for params, body in pushes:
                [result] = client.ingest_callback("wechat", {}, body, query=params)
                assert result.outcome is IngestOutcome.ACCEPTED
            client.run_until_idle()
            statuses = [client.status(t) for t in task_ids]
        assert {s.state for s in statuses} == {TaskState.FILED}
        assert {s.method for s in statuses} == {ServiceMethod.ELECTRONIC}
        dispatch_ids = sorted(d.dispatch_id for s in statuses for d in s.dispatches)
        assert sorted(m.client_msg_id for m in wechat.messages.values()) == dispatch_ids
        assert len(wechat.attempts) > len(dispatch_ids)  # the busy answers were retried
        assert wechat.token_requests == 1


# -- through the callback receiver, over real sockets --------------------------------------------------


class Served:
    """uvicorn serving an ASGI app in a thread on 127.0.0.1 with an ephemeral port."""

    def __init__(self, app: Any) -> None:
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


class RecordingReceiver(CallbackReceiver):
    """The receiver, keeping why each callback was answered as it was (the HTTP body never says)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reasons: list[str | None] = []

    def handle(self, *args: Any, **kwargs: Any) -> CallbackResponse:
        response = super().handle(*args, **kwargs)
        self.reasons.append(response.reason)
        return response


def test_events_signed_in_the_query_through_the_asgi_app(wechat: WeChatEmulator) -> None:
    """WeChat posts the event with signature/timestamp/nonce in the URL query to uvicorn; the ASGI app hands
    the query to the receiver, the receiver to the adapter. Forged, replayed and header-signed pushes fail."""
    clock = VirtualClock()
    wechat.clock = clock.now
    channel = wechat.channel(clock=clock)
    with DeliveryClient(":memory:", plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False) as client:
        task_id = client.submit(party_request())
        client.run_until_idle(until=clock.now())
        [d] = client.status(task_id).dispatches
        # WeChat signs with the wall clock; the engine runs on a virtual one
        receiver = RecordingReceiver(client, clock=SystemClock())
        with Served(asgi_app(receiver)) as url, httpx.Client(base_url=url, timeout=5) as http:
            wechat.callback_url = f"{url}/callbacks/wechat"
            delivered_at = clock.advance(timedelta(minutes=1)).replace(microsecond=0)
            params, body = wechat.deliver(d.dispatch_id)  # posted by the emulator to uvicorn, as WeChat does
            assert wechat.pushes == [200]
            replay = http.post("/callbacks/wechat", params=params, content=body)
            assert (replay.status_code, replay.json()) == (401, {"error": "rejected"})
            wrong = wechat_signature("not-the-server-token", params["timestamp"], "1234567890")
            forged = http.post(
                "/callbacks/wechat", params={**params, "nonce": "1234567890", "signature": wrong}, content=body
            )
            assert forged.status_code == 401
            message = wechat.message(d.dispatch_id)
            fresh, again = wechat.event_push(message.touser, message.msgid, "success")  # WeChat retrying
            assert http.post("/callbacks/wechat", headers=fresh, content=again).status_code == 401  # not in the query
            twice = http.post(f"/callbacks/wechat?{urlencode(fresh)}&nonce=1", content=again)
            assert twice.status_code == 400  # a parameter given twice: which copy did the signature cover?
            retried = http.post("/callbacks/wechat", params=fresh, content=again)
            assert (retried.status_code, retried.json()["duplicate"]) == (200, 1)
            opened = clock.advance(timedelta(minutes=5))
            headers, read = read_callback(READ_SECRET, channel._link_key, d.dispatch_id, opened)
            assert http.post("/callbacks/wechat", headers=headers, content=read).json()["recorded"] == 1
        assert receiver.reasons == [None, "replayed", "forged", "forged", "malformed", None, None]
        assert [e.event.TYPE for e in client.timeline(task_id)].count("dispatch.delivered") == 1
        client.run_until_idle()
        status = client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.served_at == delivered_at
    assert wechat.attempts_for(d.dispatch_id) == 1


# -- the entry point -----------------------------------------------------------------------------------


def full_env(tmp_path: Path) -> dict[str, str]:
    return {
        ENV["appid"]: "wx123",
        ENV["secret"]: "app-secret",
        ENV["template_id"]: "TPL",
        ENV["link_template"]: "https://ssfw.court.example/w/{token}",
        ENV["server_token"]: "server-token",
        ENV["read_secret"]: "read-secret",
        ENV["sent_log"]: str(tmp_path / "sent.sqlite3"),
        ENV["rate"]: "20",
    }


def test_register_channels_entry_point_is_installed() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "wechat"]
    assert entry.load() is plugin


def test_register_channels_registers_nothing_unless_configured() -> None:
    host = PluginHost([EnvWeChatPlugin({})], load_entry_points=False)
    assert "wechat" not in [c.name for c in host.channels]


def test_register_channels_from_the_environment(tmp_path: Path) -> None:
    clock = VirtualClock()
    host = PluginHost([EnvWeChatPlugin(full_env(tmp_path))], load_entry_points=False, clock=clock)
    channel = host.channels.get("wechat")
    assert isinstance(channel, WeChatChannel)
    assert channel.clock is clock
    assert channel.limiter.rate == 20.0
    assert channel.base_url == "https://api.weixin.qq.com"
    assert "app-secret" not in repr(channel)
    assert isinstance(channel.sent_log, SentLog)
    assert channel.sent_log.path == str(tmp_path / "sent.sqlite3")
    run(channel.aclose())


def test_register_channels_half_configured_fails_loudly(tmp_path: Path) -> None:
    env = {k: v for k, v in full_env(tmp_path).items() if k != ENV["server_token"]}
    with pytest.raises(PluginError, match="DELIVERY_SDK_WECHAT_SERVER_TOKEN"):
        EnvWeChatPlugin(env).configured()
    with pytest.raises(PluginError, match="not usable: link_template must contain"):
        EnvWeChatPlugin({**full_env(tmp_path), ENV["link_template"]: "https://no-token.example/"}).configured()


def test_register_channels_partial_configuration_names_every_missing_variable(tmp_path: Path) -> None:
    partial = {ENV["template_id"]: "TPL", ENV["rate"]: "fast", ENV["secret"]: " "}  # no AppID, blank secret
    host = PluginHost([EnvWeChatPlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for key in ("appid", "secret", "link_template", "server_token", "read_secret", "rate"):
        assert ENV[key] in problems, key
    assert ENV["template_id"] not in problems
    # the host's environ reaches the plugin
    host = PluginHost([EnvWeChatPlugin()], load_entry_points=False, environ=full_env(tmp_path))
    channel = host.channels.get("wechat")
    assert isinstance(channel, WeChatChannel)
    run(channel.aclose())
