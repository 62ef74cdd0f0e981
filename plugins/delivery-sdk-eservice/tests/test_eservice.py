"""The e-service platform channel against its emulator over a real socket (127.0.0.1, an ephemeral port).

Run after ``pip install -e plugins/delivery-sdk-eservice`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from delivery_sdk_eservice import (
    SERVICES_PATH,
    EnvEServicePlugin,
    EServiceChannel,
    channel_from_env,
    sign_callback,
    sign_request,
)
from delivery_sdk_eservice.emulator import PlatformEmulator

from delivery_sdk import (
    AsyncDeliveryClient,
    CallbackRejected,
    Case,
    ChannelError,
    ChannelKind,
    Contact,
    ContactKind,
    DeliveryClient,
    Dispatch,
    DispatchStatus,
    Document,
    DocumentKind,
    IngestOutcome,
    MalformedReceipt,
    PluginError,
    ReceiptKind,
    SendResult,
    ServiceMethod,
    SQLiteStore,
    TaskState,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.testing import FakeCarrier, Outcome, channels_plugin, hubei_centres, make_party, make_request
from delivery_sdk.testing import print_centres_plugin as centres_plugin

APP_KEY = "court-app"
SECRET = "platform-secret"
PDF = b"%PDF-1.4 judgment"
PDF_DIGEST = hashlib.sha256(PDF).hexdigest()
WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def platform(clock: VirtualClock) -> Iterator[PlatformEmulator]:
    with PlatformEmulator(app_key=APP_KEY, app_secret=SECRET, clock=clock.now) as server:
        yield server


def channel(server: PlatformEmulator, **kwargs: Any) -> EServiceChannel:
    options: dict[str, Any] = {"app_key": APP_KEY, "app_secret": SECRET, "timeout": 3.0}
    options.update(kwargs)
    return EServiceChannel(server.url, **options)


def dispatch(dispatch_id: str = "X1.1", account: str = "ES-0001") -> Dispatch:
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="eservice",
        kind=ChannelKind.ESERVICE,
        contact=Contact(kind=ContactKind.ESERVICE, value=account),
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
        recipient_name="张三",
        documents=(Document(document_id="D1", title="判决书", kind=DocumentKind.JUDGMENT, sha256=PDF_DIGEST),),
    )


def send_once(adapter: EServiceChannel, item: Dispatch) -> SendResult:
    """One send in its own event loop, closing the adapter's connections in that loop."""

    async def run() -> SendResult:
        async with adapter:
            return await adapter.send(item)

    return asyncio.run(run())


def eservice_request(account: str, **kwargs: Any) -> Any:
    return make_request(make_party(mobile=None, eservice=account, **kwargs), channels=[ChannelKind.ESERVICE])


def client_for(adapter: EServiceChannel, clock: VirtualClock) -> AsyncDeliveryClient:
    carrier = FakeCarrier(clock=clock, default=Outcome.signed())
    return AsyncDeliveryClient(
        SQLiteStore(":memory:"),
        plugins=[channels_plugin(adapter, carrier), centres_plugin(*hubei_centres(clock))],
        clock=clock,
        load_entry_points=False,
    )


# -- the wire -------------------------------------------------------------------------------------------


def test_signature_schemes_are_hmac_sha256_over_newline_joined_parts() -> None:
    body = b'{"a":1}'
    expected = hmac.new(
        SECRET.encode(),
        b"\n".join([b"POST", SERVICES_PATH.encode(), b"1700000000", b"n1", hashlib.sha256(body).hexdigest().encode()]),
        hashlib.sha256,
    ).hexdigest()
    assert sign_request(SECRET, "post", SERVICES_PATH, "1700000000", "n1", body) == expected
    callback = hmac.new(SECRET.encode(), b"1700000000\nn1\n" + body, hashlib.sha256).hexdigest()
    assert sign_callback(SECRET, "1700000000", "n1", body) == callback


def test_push_carries_documents_with_digests_and_is_signed(platform: PlatformEmulator, clock: VirtualClock) -> None:
    adapter = channel(platform, documents=lambda document: PDF, callback_url="https://court.example/callbacks/eservice")

    async def scenario() -> None:
        result = await adapter.send(dispatch())
        assert (result.accepted, result.provider_ref, result.receipts) == (True, "ES00000001", ())
        again = await adapter.send(dispatch())  # idempotent on the dispatch id
        assert again.provider_ref == "ES00000001"
        report = await adapter.status(dispatch())
        assert (report.found, report.provider_ref) == (True, "ES00000001")
        assert not (await adapter.status(dispatch("X9.1"))).found
        await adapter.aclose()

    asyncio.run(scenario())
    assert platform.errors == []
    assert platform.created == {"X1.1": 1}
    request = platform.services["X1.1"]["request"]
    assert request["account"] == "ES-0001"
    assert request["callback_url"] == "https://court.example/callbacks/eservice"
    [document] = request["documents"]
    assert document["sha256"] == PDF_DIGEST
    assert base64.b64decode(document["content"]) == PDF
    assert "张三" not in json.dumps(request, ensure_ascii=False)  # the account is enough: no name


def test_digest_mismatch_is_refused_before_any_request(platform: PlatformEmulator) -> None:
    adapter = channel(platform, documents=lambda document: b"%PDF-1.4 tampered")
    with pytest.raises(ChannelError, match="does not match its SHA-256 digest"):
        send_once(adapter, dispatch())
    assert platform.posts == []


def test_bad_credentials_are_transient_and_the_platform_saw_a_bad_signature(platform: PlatformEmulator) -> None:
    adapter = channel(platform, app_secret="wrong")
    with pytest.raises(TransientChannelError, match="refused our credentials"):
        send_once(adapter, dispatch())
    assert platform.errors == ["signature"]
    assert platform.created == {}


# -- through the engine ---------------------------------------------------------------------------------


def test_arrival_callback_is_the_legal_service_moment(platform: PlatformEmulator, clock: VirtualClock) -> None:
    adapter = channel(platform)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            ids = [await client.submit(eservice_request(f"ES-{i}")) for i in range(4)]
            await client.run_until_idle(until=clock.now())
            arrived_at = clock.advance(timedelta(minutes=2))
            for task_id in ids:
                [record] = client.status(task_id).dispatches
                assert record.status is DispatchStatus.SENT
                headers, body = platform.arrive(record.dispatch_id)
                event_id = adapter.verify_callback(headers, body, clock.now())
                assert event_id == json.loads(body)["event_id"]  # the replay key: the platform's event id
                [result] = await client.ingest_callback("eservice", headers, body)
                assert result.outcome is IngestOutcome.ACCEPTED
                again = await client.ingest_callback("eservice", headers, body)  # a duplicate callback
                assert [r.outcome for r in again] == [IngestOutcome.DUPLICATE]
            clock.advance(timedelta(minutes=5))
            headers, body = platform.read(client.status(ids[0]).dispatches[0].dispatch_id)
            assert [r.kind for r in adapter.parse_callback(headers, body)] == [ReceiptKind.READ]
            await client.ingest_callback("eservice", headers, body)
            await client.run_until_idle()
            for task_id in ids:
                status = client.status(task_id)
                assert status.state is TaskState.FILED
                assert status.method is ServiceMethod.ELECTRONIC
                assert status.served_at == arrived_at  # arrival in the account, not the read (CPL Art. 90)
            assert client.status(ids[0]).dispatches[0].status is DispatchStatus.READ

    asyncio.run(scenario())
    assert all(count == 1 for count in platform.created.values())
    assert len(platform.created) == 4


def test_polling_finds_the_arrival_when_the_callback_is_lost(platform: PlatformEmulator, clock: VirtualClock) -> None:
    adapter = channel(platform)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            [record] = client.status(task_id).dispatches
            arrived_at = clock.advance(timedelta(minutes=1))
            platform.arrive(record.dispatch_id)  # the callback never comes
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.state is TaskState.FILED
            assert status.served_at == arrived_at

    asyncio.run(scenario())
    assert platform.queries  # found by the engine's status polls


def test_unknown_account_is_a_permanent_failure(platform: PlatformEmulator, clock: VirtualClock) -> None:
    platform.unknown_accounts.add("ES-404")
    adapter = channel(platform)

    async def scenario() -> None:
        async with adapter:
            result = await adapter.send(dispatch(account="ES-404"))
        assert not result.accepted
        assert result.reason == "eservice: the platform refused the service (ACCOUNT_NOT_FOUND)"
        async with client_for(channel(platform), clock) as client:
            task_id = await client.submit(eservice_request("ES-404"))
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.dispatches[0].status is DispatchStatus.FAILED
            assert status.method is ServiceMethod.POSTAL

    asyncio.run(scenario())
    assert platform.created == {}


def test_platform_reported_failure_fails_the_dispatch(platform: PlatformEmulator, clock: VirtualClock) -> None:
    adapter = channel(platform)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            headers, body = platform.fail(client.status(task_id).dispatches[0].dispatch_id, "ACCOUNT_CLOSED")
            [result] = await client.ingest_callback("eservice", headers, body)
            assert result.outcome is IngestOutcome.ACCEPTED
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.dispatches[0].detail == "e-service platform: ACCOUNT_CLOSED"
            assert status.method is ServiceMethod.POSTAL

    asyncio.run(scenario())


def test_timeout_is_reconciled_by_status_not_pushed_again(platform: PlatformEmulator, clock: VirtualClock) -> None:
    platform.delay_next(3.0)  # processed, then answered after the client gave up

    async def scenario() -> None:
        async with client_for(channel(platform, timeout=0.8), clock) as client:
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            [record] = client.status(task_id).dispatches
            assert record.status is DispatchStatus.SENT
            assert platform.posts == [record.dispatch_id]  # one push; the retry asked first
            assert platform.queries == [record.dispatch_id]

    asyncio.run(scenario())
    assert list(platform.created.values()) == [1]


def test_5xx_then_success_is_retried(platform: PlatformEmulator, clock: VirtualClock) -> None:
    platform.fail_next(2, status=503)

    async def scenario() -> None:
        async with client_for(channel(platform), clock) as client:
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            [record] = client.status(task_id).dispatches
            assert record.status is DispatchStatus.SENT
            assert platform.posts == [record.dispatch_id] * 3  # every attempt under the same key
            assert platform.created == {record.dispatch_id: 1}

    asyncio.run(scenario())


def test_429_retry_after_reaches_the_engine(platform: PlatformEmulator, clock: VirtualClock) -> None:
    platform.fail_next(1, status=429, retry_after=7)
    with pytest.raises(TransientChannelError) as raised:
        send_once(channel(platform), dispatch())
    assert raised.value.retry_after == 7.0
    platform.fail_next(1, status=429, retry_after=7)

    async def scenario() -> None:
        async with client_for(channel(platform), clock) as client:
            start = clock.now()
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            assert client.status(task_id).dispatches[0].status is DispatchStatus.SENT
            assert clock.now() - start >= timedelta(seconds=7)  # the engine waited as told (virtual time)

    asyncio.run(scenario())


def test_transient_errors_at_30_percent_still_serve_everyone_once(clock: VirtualClock) -> None:
    with PlatformEmulator(
        app_key=APP_KEY, app_secret=SECRET, clock=clock.now, auto_arrive=True, transient_rate=0.3, seed=7
    ) as server:

        async def scenario() -> None:
            async with client_for(channel(server), clock) as client:
                ids = [await client.submit(eservice_request(f"ES-{i}")) for i in range(20)]
                await client.run_until_idle()
                for task_id in ids:
                    status = client.status(task_id)
                    assert (status.state, status.method) == (TaskState.FILED, ServiceMethod.ELECTRONIC)

        asyncio.run(scenario())
        assert len(server.created) == 20
        assert set(server.created.values()) == {1}


# -- callbacks ------------------------------------------------------------------------------------------


def test_forged_stale_and_foreign_callbacks_are_rejected(platform: PlatformEmulator, clock: VirtualClock) -> None:
    adapter = channel(platform)
    send_once(adapter, dispatch())
    headers, body = platform.arrive("X1.1")
    now = clock.now()
    forged = {**headers, "X-Signature": "0" * 64}
    with pytest.raises(CallbackRejected) as rejected:
        adapter.verify_callback(forged, body, now)
    assert rejected.value.reason == "forged"
    with pytest.raises(MalformedReceipt, match="signature"):
        adapter.parse_callback(forged, body)
    tampered = body.replace(b'"arrived"', b'"failed"')
    with pytest.raises(CallbackRejected, match="forged"):
        adapter.verify_callback(headers, tampered, now)
    with pytest.raises(CallbackRejected, match="forged"):
        adapter.verify_callback({**headers, "X-App-Key": "someone-else"}, body, now)
    with pytest.raises(CallbackRejected) as rejected:
        adapter.verify_callback(headers, body, now + timedelta(minutes=10))
    assert rejected.value.reason == "stale"
    event = json.loads(body)
    old_headers, old_body = platform.callback(event, timestamp=int((now - timedelta(hours=1)).timestamp()))
    with pytest.raises(CallbackRejected, match="stale"):
        adapter.verify_callback(old_headers, old_body, now)
    assert adapter.verify_callback(headers, body, now) == event["event_id"]  # stable: a replay has the same key
    no_id_headers, no_id_body = platform.callback({"service_id": "X1.1", "type": "arrived", "at": now.isoformat()})
    with pytest.raises(MalformedReceipt, match="event_id"):
        adapter.verify_callback(no_id_headers, no_id_body, now)


def test_callbacks_are_pushed_over_http_to_the_given_url(clock: VirtualClock) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/callbacks/eservice"
    try:
        with PlatformEmulator(
            app_key=APP_KEY, app_secret=SECRET, clock=clock.now, auto_arrive=True, callback_url=url
        ) as server:
            adapter = channel(server, callback_url=url)

            async def scenario() -> None:
                async with client_for(adapter, clock) as client:
                    task_id = await client.submit(eservice_request("ES-1"))
                    await client.run_until_idle(until=clock.now())
                    for _ in range(200):  # the platform pushes right after it answered the push
                        if received:
                            break
                        await asyncio.sleep(0.01)
                    [(headers, body)] = received
                    adapter.verify_callback(headers, body, clock.now())
                    results = await client.ingest_callback("eservice", headers, body)
                    # the push answer already carried the arrival: the callback is a duplicate
                    assert [r.outcome for r in results] == [IngestOutcome.DUPLICATE]
                    await client.run_until_idle()
                    assert client.status(task_id).state is TaskState.FILED

            asyncio.run(scenario())
            assert server.pushed == [200]
    finally:
        receiver.shutdown()
        receiver.server_close()


# -- crash ----------------------------------------------------------------------------------------------


def _worker(store: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), str(store), url, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )


def test_status_after_a_crash_between_push_and_commit(tmp_path: Path) -> None:
    arrived = datetime(2026, 11, 2, 1, 1, tzinfo=UTC)
    with PlatformEmulator(app_key=APP_KEY, app_secret=SECRET, clock=lambda: arrived, auto_arrive=True) as server:
        store = tmp_path / "store.sqlite3"
        killed = _worker(store, server.url, "--kill-after-send")
        assert killed.returncode == 17, killed.stderr
        assert len(server.created) == 1
        done = _worker(store, server.url)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["states"] == ["filed"] * 3
        assert summary["methods"] == ["electronic"] * 3
        assert sorted(server.posts) == sorted(summary["dispatch_ids"])  # each dispatch pushed exactly once
        assert set(server.created.values()) == {1}
        assert server.queries  # the restarted engine asked before it would push again


# -- the entry point ------------------------------------------------------------------------------------


def test_entry_point_is_declared() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "eservice"]
    assert entry.value == "delivery_sdk_eservice:plugin"
    assert isinstance(entry.load(), EnvEServicePlugin)


def test_entry_point_plugin_registers_nothing_unless_configured(
    platform: PlatformEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with DeliveryClient(":memory:", plugins=[EnvEServicePlugin({})], load_entry_points=False) as client:
        assert "eservice" not in client.host.channels.names()
    broken = {"DELIVERY_SDK_ESERVICE_URL": platform.url, "DELIVERY_SDK_ESERVICE_RATE": "-1"}
    with (
        DeliveryClient(":memory:", plugins=[EnvEServicePlugin(broken)], load_entry_points=False) as client,
        pytest.raises(PluginError) as info,
    ):
        client.host.load()
    problems = "\n".join(info.value.problems)
    for variable in ("APP_KEY", "APP_SECRET", "RATE"):
        assert f"DELIVERY_SDK_ESERVICE_{variable}" in problems
    assert "DELIVERY_SDK_ESERVICE_URL" not in problems
    with pytest.raises(PluginError, match="DELIVERY_SDK_ESERVICE_URL is required"):
        channel_from_env({"DELIVERY_SDK_ESERVICE_APP_KEY": APP_KEY})
    # the channel's own ValueError (a URL it refuses) arrives as a PluginError, message kept
    refused = {"DELIVERY_SDK_ESERVICE_URL": "ftp://platform.example", "DELIVERY_SDK_ESERVICE_APP_KEY": APP_KEY}
    with pytest.raises(PluginError, match=r"refuses its settings: \S"):
        channel_from_env({**refused, "DELIVERY_SDK_ESERVICE_APP_SECRET": SECRET})
    environ = {
        "DELIVERY_SDK_ESERVICE_URL": platform.url,
        "DELIVERY_SDK_ESERVICE_APP_KEY": APP_KEY,
        "DELIVERY_SDK_ESERVICE_APP_SECRET": SECRET,
        "DELIVERY_SDK_ESERVICE_NAME": "court-platform",
    }
    with DeliveryClient(":memory:", plugins=[EnvEServicePlugin(environ)], load_entry_points=False) as client:
        adapter = client.host.channels.get("court-platform")
        assert isinstance(adapter, EServiceChannel)
        assert client.host.channels.of_kind(ChannelKind.ESERVICE) == [adapter]


def test_through_the_sdk_callback_receiver_a_replay_is_refused(platform: PlatformEmulator, clock: VirtualClock) -> None:
    from delivery_sdk.callbacks import CallbackReceiver

    async def scenario() -> None:
        async with client_for(channel(platform), clock) as client:
            task_id = await client.submit(eservice_request("ES-1"))
            await client.run_until_idle(until=clock.now())
            receiver = CallbackReceiver(client)
            headers, body = platform.arrive(client.status(task_id).dispatches[0].dispatch_id)
            first = receiver.handle("eservice", headers, body)
            assert (first.status, first.body["recorded"]) == (200, 1)
            assert receiver.handle("eservice", headers, body).status == 401  # replayed: the same event id
            forged = receiver.handle("eservice", {**headers, "X-Signature": "f" * 64}, body)
            assert forged.status == 401
            await client.run_until_idle()
            assert client.status(task_id).state is TaskState.FILED

    asyncio.run(scenario())
