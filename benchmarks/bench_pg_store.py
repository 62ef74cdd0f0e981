"""The PostgreSQL store's group commit beside SQLite's, and how the batched rows go in (COPY or executemany).

1. ``commit``: one call with 1,000 task writes of 8 events each (4 dispatches queued and sent, 4 outbox rows
   per task, the evidence log's leaves and nodes), on PostgreSQL (local server, ``synchronous_commit=on``) and
   on a SQLite file (WAL, ``synchronous=FULL``); also ``create_tasks`` of 1,000 tasks and ``claim_due`` of
   1,000. Median of ``--rounds`` rounds.
2. ``write strategies``: the same 8,000 event rows and 8,000 leaf rows inserted into PostgreSQL by pipelined
   ``executemany``, by one ``INSERT ... SELECT FROM unnest(arrays)``, and by binary ``COPY`` (the store's
   choice), each in one transaction.

    python benchmarks/bench_pg_store.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--rounds 5]

Prints JSON and writes benchmarks/results/pg_store.json. Each run works in a schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from delivery_sdk import ChannelKind, Contact, ContactKind, SQLiteStore
from delivery_sdk.events import DispatchQueued, DispatchSent, Event, TaskCreated
from delivery_sdk.serialization import dumps, event_to_dict
from delivery_sdk.store import NewTask, OutboxEntry, TaskStore, TaskWrite
from delivery_sdk.store.postgres import PostgresStore
from delivery_sdk.testing import make_party, make_request

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
TASKS = 1000
EVENTS = 8


def _new_tasks(prefix: str) -> list[NewTask]:
    party = make_party(eservice="acct-1")
    out = []
    for i in range(TASKS):
        request = make_request(party, client_key=f"{prefix}-{i}")
        task_id = f"{prefix}-{i:05d}"
        out.append(
            NewTask(
                task_id=task_id,
                client_key=request.client_key,
                fingerprint="fp",
                case_key=request.case.key,
                created=TaskCreated(task_id=task_id, at=NOW, request=request),
                due_at=NOW,
            )
        )
    return out


def _writes(task_ids: list[str]) -> list[TaskWrite]:
    contact = Contact(kind=ContactKind.MOBILE, value="13800138000")
    writes = []
    for task_id in task_ids:
        events: list[Event] = []
        outbox = []
        for n in range(1, EVENTS // 2 + 1):
            dispatch_id = f"{task_id}.{n}"
            at = NOW + timedelta(minutes=n)
            events.append(
                DispatchQueued(
                    task_id=task_id,
                    at=at,
                    dispatch_id=dispatch_id,
                    channel="sms",
                    kind=ChannelKind.SMS,
                    contact=contact,
                )
            )
            events.append(DispatchSent(task_id=task_id, at=at, dispatch_id=dispatch_id, provider_ref=f"ref-{n}"))
            outbox.append(OutboxEntry(dispatch_id=dispatch_id, task_id=task_id, channel="sms"))
        writes.append(
            TaskWrite(
                task_id=task_id,
                expected_version=1,
                events=tuple(events),
                state="electronic",
                due_at=NOW + timedelta(hours=1),
                release=True,
                outbox=tuple(outbox),
            )
        )
    return writes


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_store(make: Callable[[], TaskStore], rounds: int) -> dict[str, Any]:
    store = make()
    create, claim, commit = [], [], []
    try:
        for r in range(rounds):
            tasks = _new_tasks(f"r{r}")
            create.append(_timed(lambda tasks=tasks: store.create_tasks(tasks)))
            started = time.perf_counter()
            claimed = store.claim_due(NOW, TASKS, NOW + timedelta(minutes=5))
            claim.append(time.perf_counter() - started)
            assert len(claimed) == TASKS, len(claimed)
            writes = _writes([t for t, _ in claimed])
            commit.append(_timed(lambda writes=writes: store.commit(writes, returning=False)))
    finally:
        store.close()
    c = statistics.median(commit)
    return {
        "create_1000_tasks_ms": round(statistics.median(create) * 1000, 1),
        "claim_1000_ms": round(statistics.median(claim) * 1000, 1),
        "commit_1000x8_ms": round(c * 1000, 1),
        "commit_events_per_s": round(TASKS * EVENTS / c),
        "commit_rounds_ms": [round(x * 1000, 1) for x in commit],
    }


def bench_write_strategies(dsn: str, rounds: int) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    body = dumps(
        event_to_dict(
            DispatchQueued(
                task_id="T-00001",
                at=NOW,
                dispatch_id="T-00001.1",
                channel="sms",
                kind=ChannelKind.SMS,
                contact=Contact(kind=ContactKind.MOBILE, value="13800138000"),
            )
        )
    )
    rows_n = TASKS * EVENTS
    times: dict[str, list[float]] = {"executemany_pipeline": [], "insert_unnest": [], "copy_binary": []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE events (seq BIGINT PRIMARY KEY, task_id TEXT NOT NULL, task_seq INTEGER NOT NULL, "
            "type TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, body TEXT NOT NULL, UNIQUE (task_id, task_seq))"
        )
        conn.execute(
            "CREATE TABLE evidence_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL, "
            "PRIMARY KEY (level, idx))"
        )
        base = 0
        try:
            for _ in range(rounds):
                for mode in times:
                    events = [
                        (base + i, f"T{(base + i) // EVENTS}", (base + i) % EVENTS + 1, "dispatch.queued", NOW, body)
                        for i in range(rows_n)
                    ]
                    nodes = [(0, base + i, os.urandom(32)) for i in range(rows_n)]
                    base += rows_n
                    started = time.perf_counter()
                    with conn.transaction(), conn.cursor() as cur:
                        if mode == "executemany_pipeline":
                            cur.executemany(
                                "INSERT INTO events (seq, task_id, task_seq, type, at, body) "
                                "VALUES (%s, %s, %s, %s, %s, %s)",
                                events,
                            )
                            cur.executemany("INSERT INTO evidence_nodes (level, idx, hash) VALUES (%s, %s, %s)", nodes)
                        elif mode == "insert_unnest":
                            cur.execute(
                                "INSERT INTO events (seq, task_id, task_seq, type, at, body) SELECT * FROM unnest("
                                "%s::bigint[], %s::text[], %s::int[], %s::text[], %s::timestamptz[], %s::text[])",
                                [list(c) for c in zip(*events, strict=True)],
                            )
                            cur.execute(
                                "INSERT INTO evidence_nodes (level, idx, hash) SELECT * FROM "
                                "unnest(%s::int[], %s::bigint[], %s::bytea[])",
                                [list(c) for c in zip(*nodes, strict=True)],
                            )
                        else:
                            with cur.copy(
                                "COPY events (seq, task_id, task_seq, type, at, body) FROM STDIN (FORMAT BINARY)"
                            ) as copy:
                                copy.set_types(["int8", "text", "int4", "text", "timestamptz", "text"])
                                for row in events:
                                    copy.write_row(row)
                            with cur.copy("COPY evidence_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy:
                                copy.set_types(["int4", "int8", "bytea"])
                                for node in nodes:
                                    copy.write_row(node)
                    times[mode].append(time.perf_counter() - started)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    out: dict[str, Any] = {mode: round(statistics.median(t) * 1000, 1) for mode, t in times.items()}
    out["unit"] = f"ms to insert {rows_n} event rows + {rows_n} leaf rows in one transaction (median)"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("DELIVERY_SDK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        postgres = bench_store(lambda: PostgresStore(args.dsn, schema=schema), args.rounds)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = bench_store(lambda: SQLiteStore(Path(tmp) / "bench.sqlite3", synchronous="FULL"), args.rounds)
    result = {
        "benchmark": "pg_store",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "tasks_per_commit": TASKS,
        "events_per_task": EVENTS,
        "postgres": postgres,
        "sqlite": sqlite,
        "postgres_vs_sqlite_commit": round(postgres["commit_1000x8_ms"] / sqlite["commit_1000x8_ms"], 2),
        "write_strategies": bench_write_strategies(args.dsn, args.rounds),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pg_store.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
