"""Several ``delivery-sdk worker`` processes on one PostgreSQL schema: shared work, SIGKILL, a server restart.

Each test gets its own schema (the ``pg_dsn`` fixture, dropped afterwards) and runs real worker processes
(``python -m delivery_sdk.cli worker --plugin pg_provider:plugin``, see ``tests/pg_provider.py``) against
fake providers that journal every ``send`` call in one append-only file shared by all workers. Afterwards
the store and the journal must show (:func:`check_population`):

- every submitted task exactly once, filed, served by exactly the dispatch its providers' outcomes call for;
- no dispatch id (the provider's idempotency key) received twice, every queued dispatch received once, on
  the channel it was queued for, and nothing received that the store does not know;
- event ``seq`` dense (1..n), each task's ``task_seq`` 1..k, its row's version the number of its events, no
  event recorded twice, each dispatch's events exactly the chain its provider's outcome implies;
- the outbox settled, every proof of service filed, and the evidence log verifying (``verify_store``).

``DELIVERY_SDK_SOAK=1`` makes the kill test longer (200 kills instead of 20).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import psycopg
import pytest

from delivery_sdk import AsyncDeliveryClient
from delivery_sdk._exceptions import StoreError
from delivery_sdk.events import DispatchQueued, Served, StoredEvent
from delivery_sdk.evidence.audit import verify_store
from delivery_sdk.lifecycle import TaskState, fold
from delivery_sdk.model import ServiceMethod
from delivery_sdk.serialization import dumps, event_to_dict
from delivery_sdk.store import open_store
from delivery_sdk.testing import make_party, make_request

TESTS = Path(__file__).parent
SOAK = os.environ.get("DELIVERY_SDK_SOAK", "") not in ("", "0")
RESTART_LOCK = Path("/tmp/delivery-sdk-pg-restart.lock")  # held (exclusive) while a test restarts the server


def _load_provider() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pg_provider", TESTS / "pg_provider.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


provider = _load_provider()
CHANNEL_OF = {".1": "pgw-eservice", ".2": "pgw-sms", ".3": "pgw-email"}


# -- running workers ---------------------------------------------------------------------------------


@attrs.define
class Workers:
    """Worker processes on one schema, started, killed and stopped by the test."""

    dsn: str
    folder: Path
    seed: int
    lease: float
    latency_ms: float = 1.0
    batch_size: int = 32
    procs: dict[str, subprocess.Popen[bytes]] = attrs.Factory(dict)
    started: dict[str, float] = attrs.Factory(dict)
    generation: int = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
            DELIVERY_SDK_PLUGINS="none",  # only the test's providers, never an installed channel plugin
            PGW_JOURNAL_DIR=str(self.folder),
            PGW_SEED=str(self.seed),
            PGW_LATENCY_MS=str(self.latency_ms),
        )
        return env

    def start(self) -> str:
        self.generation += 1
        name = f"w{self.generation:03d}"
        command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", self.dsn, "--worker-id", name]
        command += ["--plugin", "pg_provider:plugin", "--lease", str(self.lease), "--batch-size", str(self.batch_size)]
        command += ["--idle-poll", "0.05", "--health-file", str(self.health_path(name)), "--health-every", "0.2"]
        # a task killed between its service and its filing is filed again after this (600 s in production)
        command += ["--retry-after-error", "1"]
        with open(self.folder / "workers.log", "ab") as log:
            self.procs[name] = subprocess.Popen(command, env=self.env(), stdout=subprocess.DEVNULL, stderr=log)
        self.started[name] = time.monotonic()
        return name

    def health_path(self, name: str) -> Path:
        return self.folder / f"health-{name}.json"

    def health(self, name: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.health_path(name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, f"{name} had exited by itself ({proc.returncode})"

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every worker once it runs (a signal during its imports would just end it); their exit statuses."""
        wait_until(lambda: all(self.health(n).get("status") for n in self.procs), 60, lambda: "workers still starting")
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        self.procs.clear()
        return codes

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs.clear()


@contextlib.contextmanager
def restart_lock(mode: int) -> Iterator[None]:
    """The server restart test holds this exclusively; the other tests here share it, so that a restart
    from another pytest session on this machine waits for them (and they for it)."""
    with open(RESTART_LOCK, "a+") as handle:
        fcntl.flock(handle.fileno(), mode)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def workers(
    dsn: str, folder: Path, *, seed: int, lease: float, exclusive: bool = False, **kwargs: Any
) -> Iterator[Workers]:
    group = Workers(dsn=dsn, folder=folder, seed=seed, lease=lease, **kwargs)
    with restart_lock(fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH):
        try:
            yield group
        finally:
            group.kill_all()


def submit(dsn: str, start: int, count: int) -> None:
    """Submit requests ``pgw-<start>``... (idempotent on their client keys) without running an engine."""
    import asyncio

    store = open_store(dsn)

    async def go() -> None:
        async with AsyncDeliveryClient(store, load_entry_points=False, environ={}) as client:
            requests = []
            for i in range(start, start + count):
                party = make_party(
                    f"P{i}", mobile=f"139{i:08d}", eservice=f"acct-{i}", email=f"p{i}@example.cn", address=None
                )
                requests.append(make_request(party, client_key=f"pgw-{i}", case_number=f"(2026)鄂0106民初{i}号"))
            await client.submit_many(requests)

    try:
        asyncio.run(go())
    finally:
        store.close()


def filed_count(dsn: str) -> Callable[[], int]:
    store = open_store(dsn)

    def count() -> int:
        try:
            return store.count_by_state().get("filed", 0)
        except StoreError:  # the server is restarting
            return -1

    count.store = store  # type: ignore[attr-defined]
    return count


def wait_until(predicate: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what()}")
        time.sleep(0.05)


def _sql(dsn: str) -> psycopg.Connection[Any]:
    base, _, query = dsn.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    conn = psycopg.connect(base, autocommit=True)
    conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema)))
    return conn


# -- the invariants ----------------------------------------------------------------------------------


def _timeline(stored: list[StoredEvent]) -> str:
    return "\n".join(f"  {s.task_seq:3d} {s.event.TYPE} {getattr(s.event, 'dispatch_id', '')}" for s in stored)


def expected_path(seed: int, task_id: str) -> tuple[list[tuple[str, str]], str]:
    """The dispatches (id, channel) a task must have and the dispatch that serves it."""
    path = []
    for suffix, channel in CHANNEL_OF.items():
        dispatch_id = task_id + suffix
        path.append((dispatch_id, channel))
        if provider.outcome(seed, dispatch_id) == "delivered":
            return path, dispatch_id
    raise AssertionError("the third attempt always delivers")  # pragma: no cover


def _chain_ok(seed: int, dispatch_id: str, types: list[str]) -> bool:
    result = provider.outcome(seed, dispatch_id)
    if result == "delivered":
        return types == ["dispatch.sent", "dispatch.delivered"]
    if result == "failed":
        return types == ["dispatch.sent", "dispatch.failed"]
    # refused at once, or found (as failed) by the reconcile after its worker died
    return types in (["dispatch.failed"], ["dispatch.sent", "dispatch.failed"])


def check_population(dsn: str, folder: Path, seed: int, count: int) -> dict[str, int]:
    """Assert every invariant (see the module docstring); returns a few counts."""
    journal = (folder / provider.SENDS).read_text(encoding="utf-8")
    assert journal.endswith("\n"), "a torn journal line"
    sends = [line.split("\t") for line in journal.splitlines()]
    assert all(len(s) == 4 for s in sends), "a malformed journal line"
    received = collections.Counter(s[0] for s in sends)
    received_on = {s[0]: s[1] for s in sends}
    filings = collections.Counter(
        line.split("\t")[0] for line in (folder / provider.FILINGS).read_text(encoding="utf-8").splitlines()
    )
    twice = sorted(d for d, n in received.items() if n > 1)
    assert not twice, f"{len(twice)} dispatch(es) sent twice, e.g. {[s for s in sends if s[0] == twice[0]]}"

    store = open_store(dsn)
    try:
        task_ids = store.all_task_ids()  # type: ignore[attr-defined]
        rows = {t: store.task_row(t) for t in task_ids}
        stored = store.load_events(task_ids)
    finally:
        store.close()
    with _sql(dsn) as conn:
        outbox = dict(conn.execute("SELECT dispatch_id, done FROM outbox").fetchall())
        leased = conn.execute("SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL AND due_at IS NOT NULL")
        still_leased = leased.fetchone()

    assert len(task_ids) == count, f"{len(task_ids)} tasks in the store, {count} submitted"
    assert sorted(r.client_key or "" for r in rows.values()) == sorted(f"pgw-{i}" for i in range(count))
    assert set(stored) == set(task_ids), "tasks without events"
    seqs = sorted(s.seq for events in stored.values() for s in events)
    assert seqs == list(range(1, len(seqs) + 1)), "the event sequence has gaps or repeats"
    assert still_leased == (0,), "a task is still due and leased"

    queued_ids: set[str] = set()
    for task_id, events in stored.items():
        where = f"task {task_id}:\n{_timeline(events)}"
        assert [s.task_seq for s in events] == list(range(1, len(events) + 1)), f"task_seq not 1..n; {where}"
        task = fold([s.event for s in events])
        row = rows[task_id]
        assert task.state is TaskState.FILED, f"not filed: {task.state.value}; {where}"
        assert (row.state, row.version, row.due_at) == ("filed", len(events), None), f"row {row}; {where}"
        bodies = collections.Counter(dumps(event_to_dict(s.event)) for s in events)
        assert max(bodies.values()) == 1, f"an event recorded twice; {where}"
        types = collections.Counter(s.event.TYPE for s in events)
        assert all(types[t] == 1 for t in ("task.created", "service.served", "service.filed")), where
        assert types["task.needs_attention"] == 0, f"asked for a person; {where}"
        assert filings[f"{task_id}:proof"] >= 1, f"proof of service never filed; {where}"
        queued = [s.event for s in events if isinstance(s.event, DispatchQueued)]
        queued_ids.update(q.dispatch_id for q in queued)
        for q in queued:
            assert received[q.dispatch_id] == 1, f"{q.dispatch_id} queued but never sent; {where}"
            assert received_on[q.dispatch_id] == q.channel, f"{q.dispatch_id} went to another channel; {where}"
            chain = [
                s.event.TYPE
                for s in events
                if getattr(s.event, "dispatch_id", None) == q.dispatch_id and not isinstance(s.event, Served)
            ][1:]
            assert _chain_ok(seed, q.dispatch_id, chain), f"{q.dispatch_id}: {chain}; {where}"
        path, served_by = expected_path(seed, task_id)
        assert [(q.dispatch_id, q.channel) for q in queued] == path, f"dispatches differ from {path}; {where}"
        assert (task.served_method, task.served_dispatch_id) == (ServiceMethod.ELECTRONIC, served_by), where

    assert set(received) == queued_ids, "providers got dispatches the store does not know"
    assert outbox == dict.fromkeys(queued_ids, True), "the outbox is not settled"
    report = verify_store(dsn)
    assert report.ok, report.problems[:5]
    assert report.events == len(seqs)
    return {"sends": len(sends), "workers_that_sent": len({s[2] for s in sends}), "events": len(seqs)}


def assert_no_personal_data(log: Path) -> str:
    """The workers' log names no phone number, e-mail address or account of the parties."""
    import re

    text = log.read_text(encoding="utf-8", errors="replace")
    for pattern in (r"139\d{8}", r"@example\.cn", r"acct-\d"):
        found = re.search(pattern, text)
        assert found is None, f"personal data in the workers' log: {text[max(0, found.start() - 200) : found.end()]}"
    return text


# -- the tests ---------------------------------------------------------------------------------------


def test_several_workers_share_a_population_and_stop_cleanly(pg_dsn: str, tmp_path: Path) -> None:
    count, seed = 400, 91
    submit(pg_dsn, 0, count)
    filed = filed_count(pg_dsn)
    try:
        with workers(pg_dsn, tmp_path, seed=seed, lease=30.0) as group:
            names = [group.start() for _ in range(3)]
            wait_until(lambda: filed() == count, 90, lambda: f"{filed()} of {count} filed")
            # every worker took part (the population is shared, not taken by whoever came first)
            wait_until(lambda: all(group.health(n).get("tasks_processed", 0) > 0 for n in names), 10, lambda: "idle")
            codes = group.stop_all()
    finally:
        filed.store.close()  # type: ignore[attr-defined]
    assert codes == dict.fromkeys(names, 0), codes
    reports = [group.health(n) for n in names]
    assert [r["status"] for r in reports] == ["stopped"] * 3
    assert all(r["errors"] == 0 for r in reports), reports
    assert sum(r["tasks_processed"] for r in reports) >= count
    counts = check_population(pg_dsn, tmp_path, seed, count)
    assert counts["workers_that_sent"] == 3, counts
    with _sql(pg_dsn) as conn:  # a clean stop releases every lease
        assert conn.execute("SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL").fetchone() == (0,)

    # The checks can fail: a provider that got one dispatch twice, a dispatch whose result was never recorded.
    journal = tmp_path / provider.SENDS
    original = journal.read_text()
    journal.write_text(original + original.splitlines()[0] + "\n")
    with pytest.raises(AssertionError, match="sent twice"):
        check_population(pg_dsn, tmp_path, seed, count)
    journal.write_text(original)
    with _sql(pg_dsn) as conn:
        conn.execute("UPDATE outbox SET done = false WHERE dispatch_id = (SELECT min(dispatch_id) FROM outbox)")
    with pytest.raises(AssertionError, match="outbox is not settled"):
        check_population(pg_dsn, tmp_path, seed, count)


@attrs.frozen
class Kill:
    victim: str
    had_worked: bool  # its health report showed claimed tasks: it died working, not starting
    in_doubt: int  # its dispatches whose intent was committed and whose result was not
    sent_unrecorded: int  # ...of which the provider already had: the reconcile case


def _kill_one(group: Workers, dsn: str, rng: random.Random) -> Kill | None:
    working = [n for n in group.alive() if group.health(n).get("tasks_processed", 0) > 0]
    if len(working) < 2:  # others keep going: kill only while another worker is at work
        return None
    victim = rng.choice(working)
    had_worked = True
    group.kill(victim)
    with _sql(dsn) as conn:
        pending = {
            row[0]
            for row in conn.execute(
                "SELECT o.dispatch_id FROM outbox o JOIN tasks t USING (task_id) "
                "WHERE NOT o.done AND t.lease_owner = %s",
                (victim,),
            )
        }
    journal = group.folder / provider.SENDS
    sent = {line.split("\t")[0] for line in journal.read_text().splitlines()} if journal.exists() else set()
    group.start()  # a replacement, as systemd would start one
    return Kill(victim, had_worked, len(pending), len(pending & sent))


@pytest.mark.slow
def test_workers_killed_at_random_moments_lose_and_repeat_nothing(pg_dsn: str, tmp_path: Path) -> None:
    """SIGKILL one worker at a time at random moments while the others keep going (and new tasks keep
    coming); a killed worker's leases run out and another worker takes its tasks over."""
    seed, wanted = 20261128, (200 if SOAK else 20)
    rng = random.Random(seed)
    submitted = 0
    stop_submitting = threading.Event()

    def feed() -> None:
        """Keep a backlog of unfinished tasks, so that the workers are busy whenever a kill lands."""
        nonlocal submitted
        backlog = filed_count(pg_dsn)
        try:
            while not stop_submitting.is_set():
                if submitted - backlog() < 400:
                    submit(pg_dsn, submitted, 100)
                    submitted += 100
                stop_submitting.wait(0.1)
        finally:
            backlog.store.close()  # type: ignore[attr-defined]

    submit(pg_dsn, 0, 400)
    submitted = 400
    filed = filed_count(pg_dsn)
    kills: list[Kill] = []
    feeder = threading.Thread(target=feed, daemon=True)
    try:
        with workers(pg_dsn, tmp_path, seed=seed, lease=2.0, latency_ms=5.0, batch_size=16) as group:
            for _ in range(4):
                group.start()
            feeder.start()
            deadline = time.monotonic() + (1800 if SOAK else 60)
            while sum(k.had_worked for k in kills) < wanted and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.2, 0.8))
                kill = _kill_one(group, pg_dsn, rng)
                if kill is not None:
                    kills.append(kill)
            stop_submitting.set()
            feeder.join(timeout=30)
            wait_until(lambda: filed() == submitted, 120, lambda: f"{filed()} of {submitted} filed")
            codes = group.stop_all()
    finally:
        stop_submitting.set()
        filed.store.close()  # type: ignore[attr-defined]
    report = f"{len(kills)} kills: {kills}"
    print(
        f"{len(kills)} kills, {sum(k.in_doubt > 0 for k in kills)} with dispatches in doubt, "
        f"{sum(k.sent_unrecorded > 0 for k in kills)} with sends the store had not recorded"
    )
    assert sum(k.had_worked for k in kills) >= wanted, report
    assert set(codes.values()) == {0}, codes
    # some kill landed between a committed intent and its committed result: the reconcile case
    assert any(k.in_doubt for k in kills), report
    assert any(k.sent_unrecorded for k in kills), report
    counts = check_population(pg_dsn, tmp_path, seed, submitted)
    assert counts["workers_that_sent"] >= 10, counts
    assert_no_personal_data(tmp_path / "workers.log")


def _postmaster_start(dsn: str) -> float:
    with _sql(dsn) as conn:
        row = conn.execute("SELECT extract(epoch FROM pg_postmaster_start_time())").fetchone()
    assert row is not None
    return float(row[0])


def _server_up(dsn: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with _sql(dsn):
                return True
        except psycopg.OperationalError:
            time.sleep(0.2)
    return False


@pytest.mark.slow
def test_workers_ride_out_a_database_restart(pg_dsn: str, pg_server: Any, tmp_path: Path) -> None:
    """A server restart under load (``pg_ctlcluster VERSION main restart``, or ``pg_ctl restart`` for the
    session's throwaway cluster): every worker loses its connections, backs off, reconnects and carries on;
    nothing is lost or sent twice, and no worker exits."""
    count, seed = 3000, 4242
    submit(pg_dsn, 0, count)
    filed = filed_count(pg_dsn)
    try:
        with workers(pg_dsn, tmp_path, seed=seed, lease=5.0, latency_ms=2.0, exclusive=True) as group:
            names = [group.start() for _ in range(3)]
            wait_until(lambda: filed() >= 100, 60, lambda: f"{filed()} filed before the restart")
            before = filed()
            started_before = _postmaster_start(pg_dsn)
            try:
                pg_server.restart()
            finally:
                assert _server_up(pg_dsn, 120), "PostgreSQL did not come back after the restart"
            assert _postmaster_start(pg_dsn) > started_before, "the server was not restarted"
            after = filed()
            assert after < count, f"the population was done ({before} before the restart, {after} after)"
            assert before < count, "the population was done before the restart: nothing was under load"
            wait_until(lambda: filed() == count, 120, lambda: f"{filed()} of {count} filed after the restart")
            assert group.alive() == names, "a worker exited on the outage"
            reports = {n: group.health(n) for n in names}
            codes = group.stop_all()
    finally:
        filed.store.close()  # type: ignore[attr-defined]
    assert codes == dict.fromkeys(names, 0), codes
    # A step in flight when the server went down failed (logged, backed off, retried); a worker between two
    # calls just waited for its pool's fresh connection. Either way every worker was "ok" again.
    summary = {n: (r["status"], r["errors"], r["last_error"]) for n, r in reports.items()}
    assert all(r["status"] == "ok" for r in reports.values()), summary
    assert all(r["errors"] == 0 or "StoreError" in str(r["last_error"]) for r in reports.values()), summary
    check_population(pg_dsn, tmp_path, seed, count)
    log = assert_no_personal_data(tmp_path / "workers.log")
    failed_steps = sum(r["errors"] for r in reports.values())
    assert log.count("step failed (StoreError: ") == failed_steps, log[-2000:]
    assert (failed_steps == 0) == ("the store answers again" not in log), log[-2000:]
