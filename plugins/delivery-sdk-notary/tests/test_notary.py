"""The notary anchoring plugin against a real local HTTP server.

Run after ``pip install -e plugins/delivery-sdk-notary`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.metadata
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import delivery_sdk_notary
import pytest
from delivery_sdk_notary import (
    ENV_NAME,
    ENV_QUEUE,
    ENV_TOKEN,
    ENV_URL,
    LEAF_KEYS,
    EnvNotaryAnchor,
    NotaryAnchor,
    checkpoint_size,
)

from delivery_sdk import PluginError, PluginHost, TaskState
from delivery_sdk.evidence.canonical import stored_event_leaf_hash
from delivery_sdk.evidence.checkpoint import sign_checkpoint
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.evidence.verify import Checkpoint, open_checkpoint
from delivery_sdk.records import AnchorReceipt, EvidenceBatch
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

TOKEN = "notary-s3cret"
SIGNER = Signer.generate("court.test/log")
NAME = "李四光"
ID_NUMBER = "420106198001011234"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
PII = (NAME, ID_NUMBER, MOBILE, HOME, "中北路", "张三")


def note(size: int) -> str:
    root = hashlib.sha256(b"root %d" % size).digest()
    return sign_checkpoint(Checkpoint("court.test/log", size, root), [SIGNER])


def cp(size: int) -> EvidenceBatch:
    return EvidenceBatch(events=(), checkpoint=note(size))


NOTHING = EvidenceBatch(events=())


# ---------------------------------------------------------------------------------------------------
# A notary server that speaks the schema
# ---------------------------------------------------------------------------------------------------


class NotaryServer:
    """A scripted notary on 127.0.0.1: ``script`` holds the answers to give, in order, then good receipts.

    An answer is ``("status", code, headers)``, ``("raw", body_bytes)`` or ``("slow", seconds)`` (a good
    receipt after that long). Every request is checked against the protocol (path, token, idempotency key,
    body schema); a violation answers 400 and is kept in ``errors``. ``anchored`` lists the checkpoint sizes
    acknowledged, in order; ``leaves`` the leaf items acknowledged.
    """

    def __init__(self) -> None:
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.anchored: list[int] = []
        self.receipts: dict[int, str] = {}
        self.leaves: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                action = server._record(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                if action[0] == "reject":
                    self._send(400, b'{"error": "rejected"}')
                elif action[0] == "status":
                    self._send(action[1], b'{"error": "scripted"}', action[2] if len(action) > 2 else {})
                elif action[0] == "raw":
                    self._send(200, action[1])
                else:
                    if action[0] == "slow":
                        time.sleep(action[1])
                    self._send(200, server._acknowledge(self.path, json.loads(raw)))

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[Any, ...]:
        with self._lock:
            body = json.loads(raw)
            self.requests.append({"path": path, "headers": headers, "body": body, "raw": raw})
            problems = self._check(path, headers, raw, body)
            if problems:
                self.errors.extend(problems)
                return ("reject",)
            return self.script.pop(0) if self.script else ("ok",)

    def _check(self, path: str, headers: dict[str, str], raw: bytes, body: Any) -> list[str]:
        problems = []
        if headers.get("authorization") != f"Bearer {TOKEN}":
            problems.append("auth")
        if headers.get("content-type") != "application/json":
            problems.append("content-type")
        if headers.get("idempotency-key") != hashlib.sha256(raw).hexdigest():
            problems.append("idempotency-key")
        if path == "/v1/checkpoints":
            if set(body) != {"checkpoint", "size"} or body["size"] != checkpoint_size(body["checkpoint"]):
                problems.append("checkpoint body")
        elif path == "/v1/leaves":
            if set(body) != {"leaves"} or not body["leaves"] or any(set(x) != LEAF_KEYS for x in body["leaves"]):
                problems.append("leaves body")
        else:
            problems.append(f"path {path}")
        return problems

    def _acknowledge(self, path: str, body: dict[str, Any]) -> bytes:
        with self._lock:
            if path == "/v1/checkpoints":
                size = body["size"]
                self.anchored.append(size)
                receipt = self.receipts.setdefault(size, f"tx-{size}-{len(self.anchored)}")
            else:
                self.leaves.extend(body["leaves"])
                receipt = f"leaves-{len(self.leaves)}"
        return json.dumps({"receipt": receipt, "anchored_at": "2026-11-26T09:30:01+08:00"}).encode()

    def __enter__(self) -> NotaryServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[NotaryServer]:
    with NotaryServer() as s:
        yield s
    assert s.errors == []


class FakeSleep:
    def __init__(self, clock: FakeClock | None = None) -> None:
        self.waits: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queue(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


def _anchor(url: str, queue: Path, **kwargs: Any) -> NotaryAnchor:
    kwargs.setdefault("api_key", TOKEN)
    kwargs.setdefault("sleep", FakeSleep())
    kwargs.setdefault("name", "notary.test")
    return NotaryAnchor(url, queue, **kwargs)


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _assert_no_secrets(text: str) -> None:
    for secret in (*PII, TOKEN, "scripted", "rejected"):
        assert secret not in text


# ---------------------------------------------------------------------------------------------------
# Happy path and the queue
# ---------------------------------------------------------------------------------------------------


def test_happy_path_anchors_a_checkpoint_and_returns_the_receipt(server: NotaryServer, queue: Path) -> None:
    with _anchor(server.url, queue) as anchor:
        receipts = anchor.delivery_record_evidence(cp(7))
        assert receipts == [
            AnchorReceipt(
                notary="notary.test",
                size=7,
                receipt="tx-7-1",
                anchored_at=datetime.fromisoformat("2026-11-26T09:30:01+08:00"),
            )
        ]
        assert receipts[0].anchored_at.utcoffset() == timedelta(hours=8)
        assert anchor.pending() == []
        assert anchor.anchored() == receipts
    [request] = server.requests
    assert request["path"] == "/v1/checkpoints"
    assert request["body"] == {"checkpoint": note(7), "size": 7}
    assert server.anchored == [7]


def test_the_notary_defaults_to_the_base_url_and_the_api_key_is_not_in_repr(server: NotaryServer, queue: Path) -> None:
    with NotaryAnchor(server.url + "/", queue, api_key=TOKEN) as anchor:
        assert TOKEN not in repr(anchor)
        [receipt] = anchor.delivery_record_evidence(cp(3)) or []
    assert receipt.notary == server.url


def test_the_queue_is_a_wal_sqlite_file(server: NotaryServer, queue: Path) -> None:
    with _anchor(server.url, queue):
        pass
    db = sqlite3.connect(queue)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM notary_queue").fetchone()[0] == 0
    finally:
        db.close()


def test_event_only_batches_without_leaves_send_nothing(server: NotaryServer, queue: Path) -> None:
    with _anchor(server.url, queue) as anchor:
        assert anchor.delivery_record_evidence(NOTHING) is None
    assert server.requests == []


def test_a_size_already_acknowledged_is_never_anchored_again(server: NotaryServer, queue: Path) -> None:
    with _anchor(server.url, queue) as anchor:
        assert [r.size for r in anchor.delivery_record_evidence(cp(5)) or []] == [5]
        assert anchor.delivery_record_evidence(cp(5)) is None  # the same checkpoint again (a replay)
        assert anchor.enqueue_checkpoint(note(5)) is False
    with _anchor(server.url, queue) as restarted:
        assert restarted.delivery_record_evidence(cp(5)) is None
        assert [r.size for r in restarted.delivery_record_evidence(cp(6)) or []] == [6]
    assert server.anchored == [5, 6]


def test_an_unreadable_checkpoint_is_not_queued_and_does_not_raise(
    server: NotaryServer, queue: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _anchor(server.url, queue) as anchor:
        assert anchor.delivery_record_evidence(EvidenceBatch(events=(), checkpoint="origin\n007\nroot\n")) is None
        assert anchor.pending() == []
    assert "not queued" in caplog.text
    assert server.requests == []


# ---------------------------------------------------------------------------------------------------
# Outages: nothing is lost, order is kept
# ---------------------------------------------------------------------------------------------------


def test_an_outage_queues_checkpoints_and_a_later_call_flushes_them_in_order(
    server: NotaryServer, queue: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = FakeSleep()
    server.script = [("status", 500)] * 4
    with _anchor(server.url, queue, attempts=2, sleep=sleep, cooldown=0) as anchor:
        assert anchor.delivery_record_evidence(cp(1)) is None
        assert anchor.pending() == [("checkpoint", 1)]
        assert anchor.delivery_record_evidence(cp(2)) is None  # cp 1 fails again first; cp 2 waits behind it
        assert anchor.pending() == [("checkpoint", 1), ("checkpoint", 2)]
        receipts = anchor.delivery_record_evidence(cp(3)) or []
        assert [r.size for r in receipts] == [1, 2, 3]
        assert [r.receipt for r in receipts] == ["tx-1-1", "tx-2-2", "tx-3-3"]
        assert anchor.pending() == []
    assert [r["body"]["size"] for r in server.requests] == [1, 1, 1, 1, 1, 2, 3]
    assert server.anchored == [1, 2, 3]
    assert sleep.waits == [0.5, 0.5]  # one back-off per failed call (attempts=2)
    assert "HTTP 500" in caplog.text
    assert "stay queued" in caplog.text
    _assert_no_secrets(caplog.text)


def test_after_a_failure_calls_without_a_new_checkpoint_wait_for_the_cooldown(
    server: NotaryServer, queue: Path
) -> None:
    clock = FakeClock()
    server.script = [("status", 503)]
    with _anchor(server.url, queue, attempts=1, cooldown=30, clock=clock) as anchor:
        assert anchor.delivery_record_evidence(cp(1)) is None
        assert anchor.delivery_record_evidence(NOTHING) is None
        assert len(server.requests) == 1  # cooling down: no request
        clock.now += 31
        assert [r.size for r in anchor.delivery_record_evidence(NOTHING) or []] == [1]
    assert server.anchored == [1]


def test_a_restart_flushes_what_the_previous_process_queued_while_the_notary_was_down(
    server: NotaryServer, queue: Path
) -> None:
    with _anchor(_dead_url(), queue, attempts=2, timeout=1.0) as down:
        assert down.delivery_record_evidence(cp(1)) is None
        assert down.delivery_record_evidence(cp(2)) is None
        assert down.pending() == [("checkpoint", 1), ("checkpoint", 2)]
    with _anchor(server.url, queue) as restarted:  # a new process, the same queue file and notary name
        assert restarted.pending() == [("checkpoint", 1), ("checkpoint", 2)]
        receipts = restarted.delivery_record_evidence(NOTHING) or []
        assert [r.size for r in receipts] == [1, 2]
        assert [r.size for r in restarted.delivery_record_evidence(cp(3)) or []] == [3]
    assert server.anchored == [1, 2, 3]


def test_two_notaries_share_a_queue_file_without_mixing_their_items(server: NotaryServer, queue: Path) -> None:
    with _anchor(_dead_url(), queue, name="down", attempts=1) as down, _anchor(server.url, queue, name="up") as up:
        assert down.delivery_record_evidence(cp(1)) is None
        assert [r.size for r in up.delivery_record_evidence(cp(1)) or []] == [1]
        assert down.pending() == [("checkpoint", 1)]
        assert up.pending() == []


def test_5xx_is_retried_within_one_call(server: NotaryServer, queue: Path) -> None:
    sleep = FakeSleep()
    server.script = [("status", 502), ("status", 500)]
    with _anchor(server.url, queue, sleep=sleep) as anchor:
        assert [r.size for r in anchor.delivery_record_evidence(cp(4)) or []] == [4]
    assert sleep.waits == [0.5, 1.0]
    assert len(server.requests) == 3


def test_429_retry_after_is_honoured(server: NotaryServer, queue: Path) -> None:
    sleep = FakeSleep()
    server.script = [("status", 429, {"Retry-After": "2"})]
    with _anchor(server.url, queue, sleep=sleep) as anchor:
        assert [r.size for r in anchor.delivery_record_evidence(cp(4)) or []] == [4]
    assert sleep.waits == [2.0]


def test_429_retry_after_beyond_the_cap_ends_the_call_and_keeps_the_item(
    server: NotaryServer, queue: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = FakeSleep()
    server.script = [("status", 429, {"Retry-After": "120"})]
    with _anchor(server.url, queue, sleep=sleep, cooldown=0) as anchor:
        assert anchor.delivery_record_evidence(cp(4)) is None
        assert sleep.waits == []
        assert len(server.requests) == 1
        assert anchor.pending() == [("checkpoint", 4)]
        assert [r.size for r in anchor.delivery_record_evidence(NOTHING) or []] == [4]
    assert "Retry-After 120s" in caplog.text


def test_a_4xx_is_not_retried(server: NotaryServer, queue: Path) -> None:
    server.script = [("status", 409)]
    with _anchor(server.url, queue) as anchor:
        assert anchor.delivery_record_evidence(cp(4)) is None
        assert anchor.pending() == [("checkpoint", 4)]
    assert len(server.requests) == 1


def test_a_hanging_notary_times_out_within_the_budget(server: NotaryServer, queue: Path) -> None:
    server.script = [("slow", 2.0)] * 5
    with _anchor(server.url, queue, timeout=0.2, attempts=5, budget=0.5, sleep=time.sleep, backoff=0.05) as anchor:
        started = time.monotonic()
        assert anchor.delivery_record_evidence(cp(4)) is None
        elapsed = time.monotonic() - started
        assert elapsed < 1.5  # budget 0.5 s plus slack for a loaded machine
        assert anchor.pending() == [("checkpoint", 4)]
    assert 2 <= len(server.requests) <= 3  # the budget, not the attempts, ended it


def test_timeouts_are_retried(server: NotaryServer, queue: Path) -> None:
    server.script = [("slow", 1.0)]
    with _anchor(server.url, queue, timeout=0.2) as anchor:
        assert [r.size for r in anchor.delivery_record_evidence(cp(4)) or []] == [4]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[]",
        b'{"anchored_at": "2026-11-26T09:30:01+08:00"}',
        b'{"receipt": "", "anchored_at": "2026-11-26T09:30:01+08:00"}',
        b'{"receipt": 42, "anchored_at": "2026-11-26T09:30:01+08:00"}',
        b'{"receipt": "tx-scripted"}',
        b'{"receipt": "tx-scripted", "anchored_at": "2026-11-26T09:30:01"}',
        b'{"receipt": "tx-scripted", "anchored_at": "yesterday"}',
    ],
)
def test_a_malformed_response_keeps_the_item_queued(
    server: NotaryServer, queue: Path, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    server.script = [("raw", body)]
    with _anchor(server.url, queue, cooldown=0) as anchor:
        assert anchor.delivery_record_evidence(cp(4)) is None
        assert anchor.pending() == [("checkpoint", 4)]
        assert len(server.requests) == 1  # not retried in the same call
        assert [r.receipt for r in anchor.delivery_record_evidence(NOTHING) or []] == ["tx-4-1"]
    assert "POST /v1/checkpoints: response" in caplog.text
    assert "tx-scripted" not in caplog.text


def test_the_hook_never_raises_into_the_engine(queue: Path, caplog: pytest.LogCaptureFixture) -> None:
    anchor = _anchor("http://127.0.0.1:9", queue)
    anchor.close()  # the queue is gone: even that is a warning, not an exception
    assert anchor.delivery_record_evidence(cp(1)) is None
    assert "anchoring failed (ProgrammingError)" in caplog.text


def test_bad_configuration_is_refused_at_construction(queue: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        NotaryAnchor("ftp://notary.example", queue)
    with pytest.raises(ValueError, match="at least 1"):
        NotaryAnchor("http://notary.example", queue, attempts=0)


# ---------------------------------------------------------------------------------------------------
# Leaves: non-personal metadata only
# ---------------------------------------------------------------------------------------------------


async def _served_task(h: Harness) -> str:
    party = attrs.evolve(make_party("P-1", mobile=MOBILE, address=HOME), name=NAME, id_number=ID_NUMBER)
    h.sms.enqueue(Outcome.delivered())
    task_id = await h.client.submit(make_request(party))
    await h.client.run_until_idle()
    assert h.client.status(task_id).state is TaskState.FILED
    return task_id


def test_leaf_items_carry_only_the_allowed_keys_and_no_personal_data(server: NotaryServer, queue: Path) -> None:
    anchor = _anchor(server.url, queue, send_leaves=True, leaf_batch=3)

    async def main() -> list[Any]:
        h = Harness(extra_plugins=[anchor])
        try:
            await _served_task(h)
            return list(h.client.timeline("T000001"))
        finally:
            await h.aclose()

    timeline = asyncio.run(main())
    anchor.close()
    assert server.leaves, "no leaves were sent"
    assert all(set(item) == LEAF_KEYS for item in server.leaves)
    by_seq = {item["seq"]: item for item in server.leaves}
    assert sorted(by_seq) == [e.seq for e in timeline]
    for stored in timeline:
        item = by_seq[stored.seq]
        assert item["task_id"] == "T000001"
        assert item["type"] == stored.event.TYPE
        assert datetime.fromisoformat(item["at"]) == stored.event.at
        assert base64.b64decode(item["leaf_hash"]) == stored_event_leaf_hash(stored)
    assert all(len(r["body"]["leaves"]) <= 3 for r in server.requests if r["path"] == "/v1/leaves")
    for request in server.requests:
        _assert_no_secrets(request["raw"].decode("utf-8"))
    # the events really carried the personal data that must not leak
    assert any(MOBILE in json.dumps(attrs.asdict(e.event), default=str, ensure_ascii=False) for e in timeline)


# ---------------------------------------------------------------------------------------------------
# End to end: the engine signs checkpoints, the store keeps the notary's receipts
# ---------------------------------------------------------------------------------------------------


def test_end_to_end_the_store_keeps_the_receipts_of_every_signed_checkpoint(server: NotaryServer, queue: Path) -> None:
    anchor = _anchor(server.url, queue)
    signer = Signer.generate("court.test/log")

    async def main() -> tuple[list[AnchorReceipt], list[int]]:
        h = Harness(extra_plugins=[anchor])
        h.client.engine.signers = (signer,)
        try:
            await _served_task(h)
            h.sms.enqueue(Outcome.delivered())
            await h.client.submit(make_request(make_party("P-2")))
            await h.client.run_until_idle()
            return h.store.anchors(), [size for size, _ in h.store.evidence.checkpoints()]
        finally:
            await h.aclose()

    anchors, sizes = asyncio.run(main())
    anchor.close()
    assert sizes
    assert sizes == sorted(sizes)
    assert server.anchored == sizes
    assert [a.size for a in anchors] == sizes
    assert [a.receipt for a in anchors] == [server.receipts[s] for s in sizes]
    assert {a.notary for a in anchors} == {"notary.test"}
    assert all(a.anchored_at == datetime.fromisoformat("2026-11-26T09:30:01+08:00") for a in anchors)
    # what the notary got are the engine's signed checkpoints, verifiable with the log's public key
    for request in server.requests:
        checkpoint, _ = open_checkpoint(request["body"]["checkpoint"], [signer.vkey])
        assert checkpoint.size == request["body"]["size"]


def test_end_to_end_an_outage_does_not_stop_service_and_the_receipts_arrive_later(
    server: NotaryServer, queue: Path
) -> None:
    down = _anchor(_dead_url(), queue, attempts=1)

    async def main() -> list[int]:
        h = Harness(extra_plugins=[down])
        h.client.engine.signers = (Signer.generate("court.test/log"),)
        try:
            await _served_task(h)  # the notary is down: service goes on
            assert h.store.anchors() == []
            return [size for size, _ in h.store.evidence.checkpoints()]
        finally:
            await h.aclose()

    sizes = asyncio.run(main())
    down.close()
    assert sizes
    with _anchor(server.url, queue) as up:
        assert [size for _, size in up.pending()] == sizes
        assert [r.size for r in up.flush()] == sizes
    assert server.anchored == sizes


# ---------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------


def test_the_entry_point_is_the_env_plugin() -> None:
    [ep] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "notary"]
    assert ep.value == "delivery_sdk_notary:plugin"
    assert ep.load() is delivery_sdk_notary.plugin
    assert isinstance(delivery_sdk_notary.plugin, EnvNotaryAnchor)


def test_the_env_plugin_contributes_nothing_without_a_url(queue: Path) -> None:
    plugin = EnvNotaryAnchor(environ={ENV_QUEUE: str(queue)})
    with pytest.raises(PluginError, match="DELIVERY_SDK_NOTARY_URL is required"):  # a queue alone: in part
        plugin.configured()
    assert plugin.delivery_record_evidence(cp(1), {}) is None
    assert EnvNotaryAnchor(environ={}).configured() is None
    assert not queue.exists()


def test_configure_refuses_a_partial_configuration_naming_every_variable(queue: Path) -> None:
    host = PluginHost([EnvNotaryAnchor()], load_entry_points=False, environ={ENV_TOKEN: " ", ENV_QUEUE: str(queue)})
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    assert ENV_URL in problems
    assert ENV_TOKEN in problems
    with pytest.raises(PluginError, match="not usable"):  # the anchor's own ValueError, message kept
        PluginHost([EnvNotaryAnchor()], load_entry_points=False, environ={ENV_URL: "not a url"}).load()
    PluginHost([EnvNotaryAnchor()], load_entry_points=False, environ={}).load()  # not configured: fine


def test_the_env_plugin_is_configured_from_the_environment(server: NotaryServer, queue: Path) -> None:
    env = {ENV_URL: server.url, ENV_TOKEN: TOKEN, ENV_QUEUE: str(queue), ENV_NAME: "hubei-notary"}
    plugin = EnvNotaryAnchor(environ=env)
    try:
        [receipt] = plugin.delivery_record_evidence(cp(9), {}) or []
        assert (receipt.notary, receipt.size) == ("hubei-notary", 9)
        assert plugin.configured() is plugin.configured()
        assert queue.exists()
    finally:
        plugin.close()


def test_no_secret_or_personal_data_in_any_log_record_at_debug(server: NotaryServer, queue: Path) -> None:
    """Every logger at DEBUG (httpx and httpcore included): a checkpoint anchored, then one kept queued
    through an outage, log no API key, phone number, ID number or address."""
    from delivery_sdk.testing.logcheck import LogLeakCheck

    with LogLeakCheck(secrets=[TOKEN, ID_NUMBER, NAME], addresses=[HOME]) as check:
        with _anchor(server.url, queue) as anchor:
            assert anchor.delivery_record_evidence(cp(5))
        with _anchor(_dead_url(), queue, attempts=2) as anchor:
            assert not anchor.delivery_record_evidence(cp(6))
    assert any(r.name.startswith("httpx") for r in check.records)
    assert check.leaks() == []
