"""Supervision statistics and the dashboard on a large store (default 1,000,000 tasks).

The store is built quickly by direct SQL inserts: the schema comes from ``SQLiteStore`` (all migrations),
and each task's rows are the exact JSON bodies the SDK writes, produced by serialising one real event
history per path through the lifecycle (e-service delivered; e-service timed out then SMS; fallback to
post and signed; post returned, new address, signed; publication; and open work: e-service unanswered,
print job not printed, needs attention, in the post) and substituting the task id, times, court, case and
contacts. The supervision indexes are dropped for the bulk load and rebuilt after it, as a bulk import
would. Then, each in a fresh child process (so its peak memory is its own): the statistics, the overdue
list and the full report (HTML, JSON, CSV). Results go to benchmarks/results/supervision.json.

    python benchmarks/bench_supervision.py [--tasks 1000000] [--keep PATH] [--store PATH]

``--store`` measures an existing store instead of building one; ``--keep`` keeps the built store there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from delivery_sdk.events import (
    AddressSearchFailed,
    AddressUpdated,
    DispatchDelivered,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
    Event,
    FellBackToPost,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    PublicationStarted,
    ReturnReason,
    Served,
    TaskCreated,
)
from delivery_sdk.lifecycle import fold
from delivery_sdk.model import ChannelKind, Contact, ContactKind, ServiceMethod
from delivery_sdk.serialization import dumps, event_to_dict
from delivery_sdk.store import SQLiteStore
from delivery_sdk.store.sqlite import MIGRATIONS, SUPERVISION_BACKFILL
from delivery_sdk.supervision.query import SUPERVISION_INDEXES as INDEX_DDL
from delivery_sdk.testing import make_party, make_request

RESULTS = Path(__file__).parent / "results"
PROTO = "TPROTO0001"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
MOBILE = "13900000000"
ADDRESS = "湖北省武汉市武昌区中北路1号"
COURTS = (
    ("武汉市武昌区人民法院", "鄂0106", "420106", "PC-420100"),
    ("宜昌市夷陵区人民法院", "鄂0506", "420506", "PC-420500"),
    ("襄阳市樊城区人民法院", "鄂0606", "420606", "PC-420600"),
    ("荆州市荆州区人民法院", "鄂1003", "421003", "PC-421000"),
    ("黄冈市黄州区人民法院", "鄂1102", "421102", "PC-421100"),
    ("恩施市人民法院", "鄂2801", "422801", "PC-422800"),
    ("仙桃市人民法院", "鄂9004", "429004", "PC-429004"),
    ("十堰市张湾区人民法院", "鄂0303", "420303", "PC-420300"),
)
SUPERVISION_INDEXES = ("events_supervision", "events_dispatch", "tasks_created")


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _paths() -> dict[str, tuple[float, str, list[Event]]]:
    """Each path: (weight, final state, its events after task.created), all for task PROTO."""
    t = PROTO
    post = Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code="420106")
    found = Contact(kind=ContactKind.POSTAL, value=ADDRESS + "(户籍地址)", division_code="420106")
    acct = Contact(kind=ContactKind.ESERVICE, value="hbcourt-000001")
    mobile = Contact(kind=ContactKind.MOBILE, value=MOBILE)

    def q(n: int, at: float, kind: ChannelKind, channel: str, contact: Contact) -> Event:
        centre = channel if kind is ChannelKind.PRINT else None
        return DispatchQueued(
            task_id=t, at=_h(at), dispatch_id=f"{t}.{n}", channel=channel, kind=kind, contact=contact, centre_id=centre
        )

    def sent(n: int, at: float) -> Event:
        return DispatchSent(task_id=t, at=_h(at), dispatch_id=f"{t}.{n}", provider_ref=f"ref-{t}.{n}")

    def served(at: float, method: ServiceMethod, basis: str, n: int | None) -> Event:
        did = None if n is None else f"{t}.{n}"
        return Served(task_id=t, at=_h(at), method=method, basis=basis, effective_at=_h(at), dispatch_id=did)

    def filed(at: float) -> Event:
        return Filed(task_id=t, at=_h(at), record_id=f"{t}:proof")

    def postal(n: int, at: float, contact: Contact) -> list[Event]:
        return [
            PrintRouted(task_id=t, at=_h(at), centre_id="PC-420100", reason="route key 420100"),
            q(n, at, ChannelKind.PRINT, "PC-420100", contact),
            sent(n, at),
            Printed(task_id=t, at=_h(at + 4), dispatch_id=f"{t}.{n}"),
            Mailed(task_id=t, at=_h(at + 8), dispatch_id=f"{t}.{n}", waybill=f"EMS{n:010d}CN"),
        ]

    def signed(n: int, at: float) -> Event:
        return PostSigned(task_id=t, at=_h(at), dispatch_id=f"{t}.{n}", signed_at=_h(at))

    def returned(n: int, at: float) -> Event:
        return PostReturned(
            task_id=t, at=_h(at), dispatch_id=f"{t}.{n}", returned_at=_h(at), reason=ReturnReason.ADDRESS_WRONG
        )

    fallback = FellBackToPost(task_id=t, at=_h(24), reason="every electronic channel failed")
    basis_e, basis_p = "CPL Art. 90", "CPL Art. 91"
    return {
        "eservice": (
            0.40,
            "filed",
            [
                q(1, 0, ChannelKind.ESERVICE, "eservice-platform", acct),
                sent(1, 0),
                DispatchDelivered(task_id=t, at=_h(0.3), dispatch_id=f"{t}.1", delivered_at=_h(0.3)),
                DispatchRead(task_id=t, at=_h(5), dispatch_id=f"{t}.1", read_at=_h(5)),
                served(0.3, ServiceMethod.ELECTRONIC, basis_e, 1),
                filed(1),
            ],
        ),
        "sms_after_timeout": (
            0.15,
            "filed",
            [
                q(1, 0, ChannelKind.ESERVICE, "eservice-platform", acct),
                sent(1, 0),
                DispatchTimedOut(task_id=t, at=_h(24), dispatch_id=f"{t}.1"),
                q(2, 24, ChannelKind.SMS, "sms-gateway", mobile),
                sent(2, 24),
                DispatchDelivered(task_id=t, at=_h(24.5), dispatch_id=f"{t}.2", delivered_at=_h(24.5)),
                served(24.5, ServiceMethod.ELECTRONIC, basis_e, 2),
                filed(25),
            ],
        ),
        "post_signed": (
            0.24,
            "filed",
            [fallback, *postal(1, 24, post), signed(1, 80), served(80, ServiceMethod.POSTAL, basis_p, 1), filed(81)],
        ),
        "post_returned_then_signed": (
            0.10,
            "filed",
            [
                fallback,
                *postal(1, 24, post),
                returned(1, 90),
                AddressUpdated(task_id=t, at=_h(90), contact=found, source="household_registry", confidence=0.85),
                *postal(2, 90, found),
                signed(2, 150),
                served(150, ServiceMethod.POSTAL, basis_p, 2),
                filed(151),
            ],
        ),
        "publication": (
            0.03,
            "filed",
            [
                fallback,
                *postal(1, 24, post),
                returned(1, 90),
                AddressSearchFailed(task_id=t, at=_h(90), reason="no candidate address"),
                PublicationStarted(task_id=t, at=_h(90), published_at=_h(90), reason="whereabouts unknown"),
                served(90 + 30 * 24, ServiceMethod.PUBLICATION, "CPL Art. 95", None),
                filed(91 + 30 * 24),
            ],
        ),
        "open_eservice_unanswered": (
            0.03,
            "electronic",
            [q(1, 0, ChannelKind.ESERVICE, "eservice-platform", acct), sent(1, 0)],
        ),
        "open_not_printed": (0.02, "routed", [fallback, *postal(1, 24, post)[:3]]),
        "open_needs_attention": (
            0.01,
            "needs_attention",
            [fallback, NeedsAttention(task_id=t, at=_h(24), reason="no print centre serves division 110101")],
        ),
        "open_in_the_post": (0.02, "mailed", [fallback, *postal(1, 24, post)]),
    }


def _templates() -> list[tuple[float, str, str, list[tuple[str, float, str]]]]:
    """Per path: weight, final state, the created body, and (type, hours after creation, body) per event."""
    party = make_party("P-PROTO", mobile=MOBILE, eservice="hbcourt-000001", address=ADDRESS)
    request = make_request(party, court="COURTNAME", case_number="CASENUMBER", client_key="KEYPROTO")
    created = TaskCreated(task_id=PROTO, at=T0, request=request)
    created_body = dumps(event_to_dict(created))
    out = []
    for weight, state, events in _paths().values():
        task = fold([created, *events])  # the lifecycle accepts the history
        assert task.state.value == state, (task.state, state)
        rows = [(e.TYPE, (e.at - T0).total_seconds() / 3600, dumps(event_to_dict(e))) for e in events]
        out.append((weight, state, created_body, rows))
    return out


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def build(path: Path, tasks: int, seed: int = 2030) -> dict[str, Any]:
    SQLiteStore(path).close()  # the schema, every migration
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    for name in SUPERVISION_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    db.execute("DROP INDEX tasks_case")
    rng = random.Random(seed)
    templates = _templates()
    weights = [w for w, *_ in templates]
    proto_times: dict[float, str] = {}
    span = timedelta(days=60)
    started = time.perf_counter()
    seq = 0
    batch_tasks: list[tuple[Any, ...]] = []
    batch_events: list[tuple[Any, ...]] = []
    batch_outbox: list[tuple[Any, ...]] = []
    db.execute("BEGIN")
    for i in range(tasks):
        task_id = f"T{i + 1:08d}"
        court, prefix, _division, centre = COURTS[i % len(COURTS)]
        case = f"(2030){prefix}民初{i // 2 + 1}号"
        created_at = T0 + span * (i / tasks)
        _, state, created_body, rows = rng.choices(templates, weights=weights)[0]
        created_iso = _iso(created_at)
        mobile = f"13{rng.randrange(10**9):09d}"
        body = (
            created_body.replace(PROTO, task_id)
            .replace(_iso(T0), created_iso)
            .replace("COURTNAME", court)
            .replace("CASENUMBER", case)
            .replace("KEYPROTO", f"bench/{task_id}")
            .replace(MOBILE, mobile)
        )
        seq += 1
        batch_events.append((seq, task_id, 1, "task.created", created_iso, body))
        last = created_iso
        for n, (etype, hours, ebody) in enumerate(rows, start=2):
            proto_iso = proto_times.get(hours)
            if proto_iso is None:
                proto_iso = proto_times[hours] = _iso(T0 + timedelta(hours=hours))
            at = _iso(created_at + timedelta(hours=hours))
            seq += 1
            text = ebody.replace(PROTO, task_id).replace(proto_iso, at)
            if etype in ("print.routed", "dispatch.queued"):
                text = text.replace("PC-420100", centre)
            if etype == "dispatch.queued":
                text = text.replace(MOBILE, mobile)
                batch_outbox.append((f"{task_id}.{n}", task_id, "x", 1))
            batch_events.append((seq, task_id, n, etype, at, text))
            last = at
        version = len(rows) + 1
        due = None if state == "filed" else (created_at + timedelta(days=3)).timestamp()
        batch_tasks.append(
            (task_id, f"bench/{task_id}", "f" * 64, f"{court}|{case}", state, version, due, created_iso, last)
        )
        if len(batch_events) >= 200_000:
            _flush(db, batch_tasks, batch_events, batch_outbox)
    _flush(db, batch_tasks, batch_events, batch_outbox)
    db.execute(SUPERVISION_BACKFILL)  # the supervision columns the store writes with each event
    db.execute("COMMIT")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    db.execute("CREATE INDEX tasks_case ON tasks(case_key)")
    for statement in MIGRATIONS[1].split(";"):  # the migration's own CREATE INDEX statements, verbatim
        if statement.strip().startswith("CREATE INDEX"):
            db.execute(statement)
    for statement in INDEX_DDL.values():  # and those the supervision layer adds on its first open
        db.execute(statement)
    index_s = time.perf_counter() - started
    db.close()
    return {"tasks": tasks, "events": seq, "load_s": round(load_s, 2), "index_s": round(index_s, 2)}


def _flush(db: sqlite3.Connection, tasks: list[Any], events: list[Any], outbox: list[Any]) -> None:
    db.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tasks)
    db.executemany("INSERT INTO events (seq, task_id, task_seq, type, at, body) VALUES (?, ?, ?, ?, ?, ?)", events)
    db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?)", outbox)
    tasks.clear()
    events.clear()
    outbox.clear()


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(store: Path, phase: str, out_dir: Path) -> dict[str, Any]:
    """One phase in this (child) process: its time and the process's peak RSS."""
    from delivery_sdk.supervision import Supervisor, write_report

    started = time.perf_counter()
    result: dict[str, Any] = {}
    if phase == "statistics":
        with Supervisor(store) as sup:
            st = sup.statistics()
        result.update(
            tasks=st.tasks, served=st.served, by_method=st.by_method, overdue=st.overdue, channels=len(st.channels)
        )
    elif phase == "overdue":
        with Supervisor(store) as sup:
            result["overdue"] = len(sup.overdue())
    elif phase == "tasks_page":
        with Supervisor(store) as sup:
            result["rows"] = len(sup.tasks(court=COURTS[3][0], state="routed", limit=100))
            result["timeline_events"] = len(sup.timeline("T00000001"))
    elif phase == "report":
        html = out_dir / "bench-report.html"
        write_report(store, html, json_path=out_dir / "bench-report.json", csv_path=out_dir / "bench-report.csv")
        result["html_bytes"] = html.stat().st_size
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--store", help="measure this existing store instead of building one")
    parser.add_argument("--keep", help="build the store here and keep it")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(measure(Path(args.store), args.phase, Path(args.out_dir))))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-supervision-"))
    built: dict[str, Any] = {}
    if args.store:
        store = Path(args.store)
    else:
        store = Path(args.keep) if args.keep else workdir / "store.sqlite3"
        if store.exists():
            print(f"error: {store} exists", file=sys.stderr)
            return 2
        print(f"building a store of {args.tasks:,} tasks at {store} ...", file=sys.stderr)
        built = build(store, args.tasks)
        print(f"  {built}", file=sys.stderr)
    phases = {}
    for phase in ("statistics", "overdue", "tasks_page", "report"):
        child = subprocess.run(
            [sys.executable, __file__, "--store", str(store), "--phase", phase, "--out-dir", str(workdir)],
            capture_output=True,
            text=True,
            check=True,
        )
        phases[phase] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  {phase}: {phases[phase]}", file=sys.stderr)
    result = {
        "benchmark": "supervision",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "store_bytes": store.stat().st_size,
        "build": built,
        "phases": phases,
    }
    if not args.store and not args.keep:
        store.unlink()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "supervision.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
