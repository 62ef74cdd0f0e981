"""Crash test: the engine in a subprocess on a SQLite file, killed with SIGKILL, restarted, run to the end.

The worker (``tests/crash_worker.py``) talks to fake providers that journal every dispatch they receive
(fsync'd before they answer) and answer ``status`` from that journal only, with outcomes that are a pure
function of the seed and the dispatch id. After the last (unkilled) run the store and the journals must
show:

- every task of the N submitted, exactly once, filed;
- no dispatch received twice by a provider, and every received dispatch recorded as sent (or failed);
- per task, ``task_seq`` 1..n without gap or duplicate, the task row agreeing with the fold, no event
  recorded twice, and each dispatch's events exactly the chain its provider outcome implies;
- each task's dispatches and its service exactly what the providers' outcomes call for (nothing lost);
- the outbox settled and the proof of service filed.

``DELIVERY_SDK_CRASH_TRIALS`` raises the number of random-kill trials for a longer soak.
"""

from __future__ import annotations

import collections
import concurrent.futures
import importlib.util
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from delivery_sdk.events import DispatchQueued, Served, StoredEvent
from delivery_sdk.lifecycle import TaskState, fold
from delivery_sdk.model import ChannelKind, ServiceMethod
from delivery_sdk.serialization import dumps, event_to_dict
from delivery_sdk.store import SQLiteStore

WORKER = Path(__file__).with_name("crash_worker.py")


def _load_worker() -> ModuleType:
    """The worker module, for its outcome functions (tests are imported by path, not as a package)."""
    spec = importlib.util.spec_from_file_location("crash_worker", WORKER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load_worker()
TASKS = 300
MIN_KILLS = 20
TRIALS = max(20, int(os.environ.get("DELIVERY_SDK_CRASH_TRIALS", "20")))
BASE_SEED = 20261102

CHANNELS = {"eservice": "crash-eservice", "sms": "crash-sms", "email": "crash-email"}
ELECTRONIC_CHAIN = {
    "delivered": ("dispatch.sent", "dispatch.delivered"),
    "delivered_late": ("dispatch.sent", "dispatch.delivered"),
    "read_late": ("dispatch.sent", "dispatch.read"),
    "failed": ("dispatch.sent", "dispatch.failed"),
    "failed_late": ("dispatch.sent", "dispatch.failed"),
    "no_answer": ("dispatch.sent", "dispatch.timed_out"),
}
POSTAL_CHAIN = ("dispatch.sent", "print.printed", "post.mailed")
ONCE_PER_TASK = ("task.created", "service.served", "service.filed")


# -- running the worker ------------------------------------------------------------------------------


def _command(trial: Path, seed: int, *extra: str) -> list[str]:
    store, journal = trial / "store.sqlite3", trial / "journal"
    return [sys.executable, str(WORKER), str(store), str(journal), "--submit", str(TASKS), "--seed", str(seed), *extra]


def _finish(trial: Path, seed: int) -> dict[str, object]:
    """Run the worker to the end, unkilled; its one-line summary."""
    with open(trial / "worker.log", "ab") as log:
        done = subprocess.run(_command(trial, seed), stdout=subprocess.PIPE, stderr=log, timeout=180, check=False)
    assert done.returncode == 0, f"seed {seed}: the final run failed ({done.returncode}); see {trial}/worker.log"
    summary: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return summary


@attrs.frozen
class Kill:
    """What one SIGKILL interrupted, read from the files right after the process died."""

    delay: float
    phase: str  # startup (no task yet), submit, run; "missed" when the worker had finished before
    in_doubt: int  # dispatches whose intent was committed but whose result was not
    sent_unrecorded: int  # ...of which the provider had received: the reconcile case


def _observe(trial: Path, delay: float, killed: bool) -> Kill:
    store = trial / "store.sqlite3"
    if not killed:
        return Kill(delay, "missed", 0, 0)
    if not store.exists():
        return Kill(delay, "startup", 0, 0)
    db = sqlite3.connect(store)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone() is None:
            return Kill(delay, "startup", 0, 0)
        tasks = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        pending = {row[0] for row in db.execute("SELECT dispatch_id FROM outbox WHERE done = 0")}
    finally:
        db.close()
    journal = trial / "journal" / cw.SENDS
    sent = {line.split("\t")[0] for line in journal.read_text().splitlines()} if journal.exists() else set()
    phase = "startup" if tasks == 0 else ("submit" if tasks < TASKS else "run")
    return Kill(delay, phase, len(pending), len(pending & sent))


def _random_trial(root: Path, number: int) -> list[Kill]:
    """Start, kill at a random moment, restart... then finish and check. Returns what each kill hit."""
    seed = BASE_SEED + number
    rng = random.Random(seed)
    trial = root / f"trial-{number:03d}"
    trial.mkdir()
    kills: list[Kill] = []
    for _ in range(rng.randint(1, 3)):
        delay = rng.uniform(0.0, 1.2)  # from the moment the worker is ready
        with open(trial / "worker.log", "ab") as log:
            proc = subprocess.Popen(_command(trial, seed), stdout=subprocess.PIPE, stderr=log)
            assert proc.stdout is not None
            ready = proc.stdout.readline()  # "ready" once imported (or EOF if it died first)
            assert ready in (b"ready\n", b""), ready
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            code = proc.wait(timeout=60)
            proc.stdout.close()
        assert code in (-signal.SIGKILL, 0), f"seed {seed}: worker exited {code}; see {trial}"
        killed = code == -signal.SIGKILL  # else it had finished just before the signal
        kills.append(_observe(trial, delay, killed))
        if not killed:
            break  # it had finished: nothing left to interrupt
    summary = _finish(trial, seed)
    assert summary["tasks"] == TASKS
    assert summary["states"] == {"filed": TASKS}
    check_store(trial, seed)
    shutil.rmtree(trial)  # keep only failing trials for a post-mortem
    return kills


# -- the invariants ----------------------------------------------------------------------------------


def _timeline(stored: list[StoredEvent]) -> str:
    return "\n".join(
        f"  {s.task_seq:3d} {s.event.at.isoformat()} {s.event.TYPE} {getattr(s.event, 'dispatch_id', '')}"
        for s in stored
    )


def _expected_service(seed: int, task_id: str, index: int) -> tuple[list[tuple[str, str]], ServiceMethod, str | None]:
    """The dispatches (id, channel) a task must have, and how it must be served, given the outcomes."""
    kind = index % 10
    kinds = [] if kind == 0 else (["sms"] if kind < 3 else ["eservice", "sms", "email"])
    path: list[tuple[str, str]] = []
    for channel in kinds:
        dispatch_id = f"{task_id}.{len(path) + 1}"
        path.append((dispatch_id, CHANNELS[channel]))
        if cw.electronic_outcome(seed, dispatch_id) in cw.DELIVERING:
            return path, ServiceMethod.ELECTRONIC, dispatch_id
    for centre in list(cw.CENTRES)[: 2 if index % 3 == 0 else 1]:
        dispatch_id = f"{task_id}.{len(path) + 1}"
        path.append((dispatch_id, centre))
        if cw.postal_outcome(seed, dispatch_id) in ("signed", "refused"):
            return path, ServiceMethod.POSTAL, dispatch_id
    return path, ServiceMethod.PUBLICATION, None


def _check_dispatch_chain(seed: int, dispatch: DispatchQueued, types: list[str]) -> str | None:
    """None if the dispatch's events (after dispatch.queued) are what its provider's outcome implies."""
    if dispatch.kind is ChannelKind.PRINT:
        last = "post.signed" if cw.postal_outcome(seed, dispatch.dispatch_id) == "signed" else "post.returned"
        wanted: list[tuple[str, ...]] = [(*POSTAL_CHAIN, last)]
    else:
        outcome = cw.electronic_outcome(seed, dispatch.dispatch_id)
        if outcome == "refused":  # refused at once, or found (as failed) by the reconcile after a crash
            wanted = [("dispatch.failed",), ("dispatch.sent", "dispatch.failed")]
        else:
            wanted = [ELECTRONIC_CHAIN[outcome]]
    if tuple(types) in wanted:
        return None
    return f"dispatch {dispatch.dispatch_id} ({dispatch.channel}) has events {types}, expected one of {wanted}"


def check_store(trial: Path, seed: int) -> dict[str, int]:
    """Assert every invariant of a finished run; returns a few counts for the caller."""
    journal = (trial / "journal" / cw.SENDS).read_text(encoding="utf-8")
    assert journal.endswith("\n"), "a torn journal line"
    sends = [line.split("\t") for line in journal.splitlines()]
    assert all(len(s) == 3 for s in sends), "a malformed journal line"
    received = collections.Counter(s[0] for s in sends)
    received_on = {s[0]: s[1] for s in sends}
    filings = collections.Counter(
        line.split("\t")[0] for line in (trial / "journal" / cw.FILINGS).read_text(encoding="utf-8").splitlines()
    )

    with SQLiteStore(trial / "store.sqlite3") as store:
        task_ids = store.all_task_ids()
        rows = {t: store.task_row(t) for t in task_ids}
        stored = store.load_events(task_ids)
        seqs = sorted(s.seq for events in stored.values() for s in events)
    db = sqlite3.connect(trial / "store.sqlite3")
    try:
        outbox = dict(db.execute("SELECT dispatch_id, done FROM outbox").fetchall())
    finally:
        db.close()

    twice = {d: n for d, n in received.items() if n > 1}
    if twice:
        d = next(iter(twice))
        task_id = d.rsplit(".", 1)[0]
        lines = [s for s in sends if s[0] == d]
        raise AssertionError(
            f"seed {seed}: {len(twice)} dispatch(es) sent twice, e.g. {d}: journal {lines}\n"
            f"timeline of {task_id}:\n{_timeline(stored.get(task_id, []))}"
        )

    # No task lost, none duplicated.
    assert len(task_ids) == TASKS, f"seed {seed}: {len(task_ids)} tasks in the store, {TASKS} submitted"
    assert sorted(r.client_key or "" for r in rows.values()) == sorted(f"crash-{i}" for i in range(TASKS))
    assert set(stored) == set(task_ids), f"seed {seed}: tasks without events"
    assert seqs == list(range(1, len(seqs) + 1)), f"seed {seed}: the store's event sequence has gaps or repeats"

    queued_ids: set[str] = set()
    for task_id, events in stored.items():
        where = f"seed {seed}, task {task_id}:\n{_timeline(events)}"
        assert [s.task_seq for s in events] == list(range(1, len(events) + 1)), f"task_seq not 1..n; {where}"
        task = fold([s.event for s in events])
        row = rows[task_id]
        assert task.state is TaskState.FILED, f"not filed: {task.state.value}; {where}"
        assert (row.state, row.version, row.due_at) == (task.state.value, len(events), None), f"row {row}; {where}"
        bodies = collections.Counter(dumps(event_to_dict(s.event)) for s in events)
        assert max(bodies.values()) == 1, f"an event recorded twice; {where}"
        types = collections.Counter(s.event.TYPE for s in events)
        assert all(types[t] == 1 for t in ONCE_PER_TASK), f"{dict(types)}; {where}"
        assert types["task.needs_attention"] == 0, f"asked for a person; {where}"
        assert filings[f"{task_id}:proof"] >= 1, f"proof of service never reached the case file; {where}"

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
            problem = _check_dispatch_chain(seed, q, chain)
            assert problem is None, f"{problem}; {where}"

        index = int((row.client_key or "").removeprefix("crash-"))
        path, method, served_by = _expected_service(seed, task_id, index)
        assert [(q.dispatch_id, q.channel) for q in queued] == path, f"dispatches differ from {path}; {where}"
        assert (task.served_method, task.served_dispatch_id) == (method, served_by), f"served wrongly; {where}"

    assert set(received) == queued_ids, f"seed {seed}: providers got dispatches the store does not know"
    assert outbox == dict.fromkeys(queued_ids, 1), f"seed {seed}: the outbox is not settled"
    return {"sends": len(sends), "refilings": sum(filings.values()) - len(filings)}


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    kills: list[Kill] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        number = 0
        while number < TRIALS or (sum(k.phase != "missed" for k in kills) < MIN_KILLS and number < 3 * TRIALS):
            batch = [pool.submit(_random_trial, tmp_path, n) for n in range(number, number + 2)]
            number += 2
            for future in batch:
                kills.extend(future.result())
    landed = collections.Counter(k.phase for k in kills)
    real = len(kills) - landed["missed"]
    report = f"{number} trials, kills by phase {dict(landed)}, in doubt {[k.in_doubt for k in kills if k.in_doubt]}"
    assert real >= MIN_KILLS, report
    assert landed["run"] >= 1, report
    # Some kill hit a provider that had a dispatch the engine had not recorded: the reconcile case.
    assert any(k.sent_unrecorded for k in kills), report


def test_sigkill_right_after_sends_and_commits(tmp_path: Path) -> None:
    """Chosen crash points: right after a provider got a dispatch (before the engine recorded it), and
    right after a commit (an intent committed, nothing sent yet; or results committed, nothing published)."""
    seed = BASE_SEED - 1
    points = (
        ("--kill-after-submits", 2),
        ("--kill-after-sends", 1),
        ("--kill-after-commits", 1),
        ("--kill-after-sends", 37),
        ("--kill-after-commits", 2),
        ("--kill-after-sends", 64),
        ("--kill-after-commits", 5),
    )
    reconciled = 0
    for flag, n in points:
        with open(tmp_path / "worker.log", "ab") as log:
            done = subprocess.run(
                _command(tmp_path, seed, flag, str(n)), stdout=subprocess.PIPE, stderr=log, timeout=180, check=False
            )
        assert done.returncode == -signal.SIGKILL, f"{flag} {n}: the worker was not killed ({done.returncode})"
        kill = _observe(tmp_path, 0.0, killed=True)
        assert kill.phase == ("submit" if flag == "--kill-after-submits" else "run"), (flag, n, kill)
        if flag == "--kill-after-sends":
            # The provider has the n-th dispatch of this run; the engine has not recorded it.
            assert kill.sent_unrecorded >= 1, kill
            reconciled += kill.sent_unrecorded
    summary = _finish(tmp_path, seed)
    assert (summary["tasks"], summary["states"]) == (TASKS, {"filed": TASKS})
    counts = check_store(tmp_path, seed)
    assert counts["sends"] > reconciled >= 3


def test_the_checks_catch_a_double_send_and_a_lost_event(tmp_path: Path) -> None:
    """The invariants can fail: a provider that got one dispatch twice, and a store that lost an event."""
    seed = BASE_SEED - 2
    _finish(tmp_path, seed)
    check_store(tmp_path, seed)
    journal = tmp_path / "journal" / cw.SENDS
    original = journal.read_text()
    first = original.splitlines()[0]
    journal.write_text(original + first + "\n")
    with pytest.raises(AssertionError, match=r"sent twice"):
        check_store(tmp_path, seed)
    journal.write_text(original)

    # A delivery report lost without a trace: the event deleted and everything after it renumbered.
    db = sqlite3.connect(tmp_path / "store.sqlite3")
    try:
        seq, task_id, task_seq = db.execute(
            "SELECT seq, task_id, task_seq FROM events WHERE type = 'dispatch.delivered' ORDER BY seq LIMIT 1"
        ).fetchone()
        db.execute("DELETE FROM events WHERE seq = ?", (seq,))
        db.execute("UPDATE events SET seq = -(seq - 1) WHERE seq > ?", (seq,))
        db.execute("UPDATE events SET seq = -seq WHERE seq < 0")
        db.execute(
            "UPDATE events SET task_seq = -(task_seq - 1) WHERE task_id = ? AND task_seq > ?", (task_id, task_seq)
        )
        db.execute("UPDATE events SET task_seq = -task_seq WHERE task_seq < 0")
        db.execute("UPDATE tasks SET version = version - 1 WHERE task_id = ?", (task_id,))
        db.commit()
    finally:
        db.close()
    with pytest.raises(AssertionError, match=r"has events \['dispatch.sent'\]"):
        check_store(tmp_path, seed)
