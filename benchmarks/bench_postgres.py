"""Scale-out throughput: worker processes on PostgreSQL, beside SQLite and beside a job queue (pgqueuer).

Every task goes: created -> e-service attempt fails -> SMS delivered -> served -> filed (9 persisted events,
the same path as benchmarks/bench_engine.py), on the system clock, with in-process fake channels that
answer at once. One run measures, on the same population of ``--tasks`` tasks:

- ``sqlite``: one worker process (``delivery_sdk.worker.Worker``, what ``delivery-sdk worker`` runs) on a
  SQLite file (WAL, synchronous=FULL);
- ``postgres_1`` / ``postgres_2`` / ``postgres_4``: 1, 2 and 4 worker processes on one PostgreSQL schema;
- ``pgqueuer_1`` / ``pgqueuer_4``: the job-queue peer with 1 and 4 worker processes. Each task step is one
  pgqueuer job: ``eservice`` (commit the intent: ``dispatch.queued`` + an outbox row; call the same fake
  e-service channel; commit ``dispatch.sent`` + ``dispatch.failed``, settle the outbox row, bump the task
  row; enqueue ``sms``), ``sms`` (the same with the fake SMS channel: ``dispatch.queued``; then
  ``dispatch.sent`` + ``dispatch.delivered`` + ``service.served``; enqueue ``file``) and ``file``
  (``service.filed``, task row to ``filed``). Its events are the very JSON bodies the engine wrote for the
  same task ids (read back from the SQLite run), so both sides persist the same 9 events per task; the
  tasks, their ``task.created`` events and the first job of each task exist before the clock starts, as
  the engine's submitted tasks do. The peer does not fold events or run the policy (a job queue knows no
  lifecycle): it is the cost of driving the same I/O and the same writes through per-job transactions. It
  runs ``--peer-tasks`` tasks (it is slow), its rate is per task like the others';
- ``pgqueuer_noop_1``: the queue's own ceiling on this machine, no-op jobs through one queue manager (a
  task needs 3 jobs).

Tasks are submitted (untimed) before the workers are told to start; the time is from "go" to the moment
every task is ``filed``. Results go to benchmarks/results/postgres.json.

    python benchmarks/bench_postgres.py [--tasks 20000] [--dsn postgresql://postgres@127.0.0.1:5432/test]
        [--workers 1,2,4] [--peer-workers 1,4] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results"
RESTART_LOCK = Path("/tmp/delivery-sdk-pg-restart.lock")
DEFAULT_DSN = os.environ.get("DELIVERY_SDK_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ENGINE_PATH = (
    "task.created",
    "dispatch.queued",
    "dispatch.sent",
    "dispatch.failed",
    "dispatch.queued",
    "dispatch.sent",
    "dispatch.delivered",
    "service.served",
    "service.filed",
)
# job -> (channel, slice of the task's events committed as the intent, slice committed as the result, next job)
PEER_STEPS: dict[str, tuple[str | None, slice, slice, str | None]] = {
    "eservice": ("eservice", slice(1, 2), slice(2, 4), "sms"),
    "sms": ("sms", slice(4, 5), slice(5, 8), "file"),
    "file": (None, slice(0, 0), slice(8, 9), None),
}


def _with_schema(dsn: str, schema: str) -> str:
    """A libpq DSN whose connections use ``schema`` (for the peer, which connects with psycopg itself)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


def _store_dsn(dsn: str, schema: str) -> str:
    """The store's DSN for ``schema`` (PostgresStore reads ``?schema=``)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}schema={schema}"


# -- the engine side ---------------------------------------------------------------------------------


def _plugin() -> object:
    from delivery_sdk import ChannelKind, SystemClock
    from delivery_sdk.testing import FakeChannel, Outcome, channels_plugin

    clock = SystemClock()
    eservice = FakeChannel("eservice", ChannelKind.ESERVICE, clock=clock, default=Outcome.failed("no account"))
    sms = FakeChannel("sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
    return channels_plugin(eservice, sms)


def _open(spec: str) -> Any:
    from delivery_sdk.worker import open_store_spec

    return open_store_spec(spec)


def submit(spec: str, tasks: int) -> None:
    """The population (untimed): ``tasks`` requests with fixed ids T00000001..."""
    from delivery_sdk import AsyncDeliveryClient
    from delivery_sdk.testing import make_party, make_request

    store = _open(spec)
    ids = iter(range(1, 10**9))
    party = make_party(eservice="acct-1", address=None)

    async def go() -> None:
        client = AsyncDeliveryClient(store, load_entry_points=False, environ={}, id_factory=lambda: f"T{next(ids):08d}")
        for start in range(0, tasks, 2000):
            n = min(2000, tasks - start)
            await client.submit_many([make_request(party, client_key=f"bench-{start + i}") for i in range(n)])
        await client.aclose()

    asyncio.run(go())
    store.close()


def engine_worker(spec: str, go_file: Path, batch_size: int) -> int:
    """One worker process: build the worker, say ready, wait for go, run until SIGTERM."""
    from delivery_sdk.worker import Worker, WorkerConfig, open_store_spec

    config = WorkerConfig(batch_size=batch_size, lease=timedelta(seconds=120), idle_poll=0.005, health_every=3600)
    worker = Worker(open_store_spec(spec), plugins=[_plugin()], config=config, load_entry_points=False, environ={})
    print("ready", flush=True)
    while not go_file.exists():
        time.sleep(0.001)
    code = asyncio.run(worker.main())
    print(json.dumps({"steps": worker.steps, "tasks": worker.tasks_processed, "errors": worker.errors}), flush=True)
    return code


def _spawn(args: list[str], count: int) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a worker did not start: {line!r}")
    return procs


def _wait_done(done: Any, timeout: float) -> None:
    """Poll ``done()`` (a cheap, indexed question: the measurement must not load the server) every 20 ms."""
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


def _stop(procs: list[subprocess.Popen[str]], *, drain: bool = False) -> list[dict[str, Any]]:
    """SIGTERM the engine workers (they stop cleanly); drained pgqueuer workers exit by themselves."""
    for proc in procs:
        if drain:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        else:
            proc.send_signal(signal.SIGTERM)
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker exited {proc.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def run_engine(spec: str, tasks: int, workers: int, batch_size: int, tmp: Path) -> dict[str, Any]:
    submit(spec, tasks)
    go_file = tmp / f"go-{uuid.uuid4().hex}"
    procs = _spawn(
        ["--role", "engine-worker", "--store", spec, "--go", str(go_file), "--batch-size", str(batch_size)], workers
    )
    store = _open(spec)
    try:
        started = time.perf_counter()
        go_file.touch()
        # no task waits for anything any more (next_due_at reads the due-time index), then count once
        _wait_done(lambda: store.next_due_at() is None, timeout=max(120.0, tasks / 50))
        elapsed = time.perf_counter() - started
        counts = store.count_by_state()
    finally:
        stats = _stop(procs)
        store.close()
    assert counts == {"filed": tasks}, counts
    return {
        "workers": workers,
        "seconds": elapsed,
        "tasks_per_s": tasks / elapsed,
        "steps": sum(s["steps"] for s in stats),
        "tasks_claimed": sum(s["tasks"] for s in stats),
        "errors": sum(s["errors"] for s in stats),
    }


# -- the job-queue peer ------------------------------------------------------------------------------


PEER_DDL = """
CREATE TABLE peer_tasks (task_id TEXT PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE peer_events (seq BIGSERIAL PRIMARY KEY, task_id TEXT NOT NULL, task_seq INTEGER NOT NULL,
    type TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (task_id, task_seq));
CREATE TABLE peer_outbox (dispatch_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, channel TEXT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT false);
"""


def _engine_bodies(sqlite_path: Path, limit: int) -> dict[str, list[tuple[str, str, str]]]:
    """(type, at, body) of every event the engine wrote, per task, in order (the first ``limit`` tasks)."""
    import sqlite3

    db = sqlite3.connect(sqlite_path)
    out: dict[str, list[tuple[str, str, str]]] = {}
    query = "SELECT task_id, type, at, body FROM events WHERE task_id <= ? ORDER BY seq"
    for task_id, type_, at, body in db.execute(query, (f"T{limit:08d}",)):
        out.setdefault(task_id, []).append((type_, at, body))
    db.close()
    return out


def peer_setup(dsn: str, schema: str, bodies_from: Path, limit: int) -> int:
    """Schema, pgqueuer install, tasks with their created events and one queued job each (untimed)."""
    import psycopg

    os.environ["PGQUEUER_SCHEMA"] = schema
    from pgqueuer import PsycopgDriver
    from pgqueuer.domain.settings import db_settings
    from pgqueuer.queries import Queries

    db_settings.cache_clear()  # pgqueuer reads PGQUEUER_SCHEMA once per process

    bodies = _engine_bodies(bodies_from, limit)
    for task_id, events in bodies.items():
        if tuple(e[0] for e in events) != ENGINE_PATH:
            raise RuntimeError(f"task {task_id} took another path than the peer replays")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        for statement in PEER_DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO peer_tasks (task_id, state, version) VALUES (%s, 'created', 1)", [(t,) for t in bodies]
            )
            cur.executemany(
                "INSERT INTO peer_events (task_id, task_seq, type, at, body) VALUES (%s, 1, %s, %s, %s)",
                [(t, *events[0]) for t, events in bodies.items()],
            )

    async def install_and_enqueue() -> None:
        conn = await psycopg.AsyncConnection.connect(_with_schema(dsn, schema), autocommit=True)
        queries = Queries(PsycopgDriver(conn))
        await queries.install(create_schema=False)
        ids = list(bodies)
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            await queries.enqueue(["eservice"] * len(chunk), [t.encode() for t in chunk], [0] * len(chunk))
        await conn.close()

    asyncio.run(install_and_enqueue())
    return len(bodies)


def peer_worker(dsn: str, schema: str, bodies_from: Path, limit: int, go_file: Path, batch_size: int) -> int:
    """One pgqueuer worker process running the three step jobs."""
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    os.environ["PGQUEUER_SCHEMA"] = schema
    from pgqueuer import PsycopgDriver, QueueManager
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    from delivery_sdk import ChannelKind, SystemClock
    from delivery_sdk.model import Contact, ContactKind, Dispatch
    from delivery_sdk.testing import FakeChannel, Outcome
    from delivery_sdk.testing.harness import make_request

    bodies = _engine_bodies(bodies_from, limit)
    clock = SystemClock()
    channels = {
        "eservice": FakeChannel("eservice", ChannelKind.ESERVICE, clock=clock, default=Outcome.failed("no account")),
        "sms": FakeChannel("sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered()),
    }
    request = make_request()
    dsn_s = _with_schema(dsn, schema)
    print("ready", flush=True)
    while not go_file.exists():
        time.sleep(0.001)

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(dsn_s, autocommit=True)
        queries = Queries(PsycopgDriver(conn))
        qm = QueueManager(queries)
        pool = AsyncConnectionPool(dsn_s, min_size=4, max_size=16, open=False)
        await pool.open()

        async def write(
            task_id: str,
            events: list[tuple[str, str, str]],
            first_seq: int,
            state: str,
            sql: list[tuple[str, tuple[Any, ...]]],
        ) -> None:
            async with pool.connection() as db, db.transaction(), db.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO peer_events (task_id, task_seq, type, at, body) VALUES (%s, %s, %s, %s, %s)",
                    [(task_id, first_seq + i, *e) for i, e in enumerate(events)],
                )
                for statement, params in sql:
                    await cur.execute(statement, params)
                await cur.execute(
                    "UPDATE peer_tasks SET state = %s, version = %s, updated_at = now() WHERE task_id = %s",
                    (state, first_seq + len(events) - 1, task_id),
                )

        def make(name: str) -> Any:
            channel_name, intent_slice, result_slice, nxt = PEER_STEPS[name]

            async def handler(job: Job) -> None:
                assert job.payload is not None
                task_id = job.payload.decode()
                events = bodies[task_id]
                intent, result = events[intent_slice], events[result_slice]
                if channel_name is not None:
                    dispatch_id = f"{task_id}.{1 if name == 'eservice' else 2}"
                    await write(
                        task_id,
                        intent,
                        intent_slice.start + 1,
                        "sending",
                        [
                            (
                                "INSERT INTO peer_outbox (dispatch_id, task_id, channel) VALUES (%s, %s, %s)",
                                (dispatch_id, task_id, channel_name),
                            )
                        ],
                    )
                    dispatch = Dispatch(
                        dispatch_id=dispatch_id,
                        task_id=task_id,
                        channel=channel_name,
                        kind=channels[channel_name].kind,
                        contact=Contact(
                            kind=ContactKind.ESERVICE if name == "eservice" else ContactKind.MOBILE,
                            value="acct-1" if name == "eservice" else "13800138000",
                        ),
                        case=request.case,
                        recipient_name=request.party.name,
                        documents=request.documents,
                    )
                    await channels[channel_name].send(dispatch)
                    channels[channel_name].history.clear()
                    await write(
                        task_id,
                        result,
                        result_slice.start + 1,
                        "served" if name == "sms" else "sending",
                        [("UPDATE peer_outbox SET done = true WHERE dispatch_id = %s", (dispatch_id,))],
                    )
                else:
                    await write(task_id, result, result_slice.start + 1, "filed", [])
                if nxt is not None:
                    await queries.enqueue(nxt, job.payload)

            return handler

        for name in PEER_STEPS:
            qm.entrypoint(name)(make(name))
        await qm.run(batch_size=batch_size, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=0.2))
        await pool.close()
        await conn.close()

    asyncio.run(main())
    print(json.dumps({"steps": 0, "tasks": 0, "errors": 0}), flush=True)
    return 0


def run_peer(dsn: str, bodies_from: Path, limit: int, workers: int, batch_size: int, tmp: Path) -> dict[str, Any]:
    import psycopg

    schema = f"bench_peer_{uuid.uuid4().hex[:10]}"
    try:
        tasks = peer_setup(dsn, schema, bodies_from, limit)
        go_file = tmp / f"go-{uuid.uuid4().hex}"
        args = ["--role", "peer-worker", "--dsn", dsn, "--schema", schema, "--bodies", str(bodies_from)]
        args += ["--peer-tasks", str(limit)]
        procs = _spawn([*args, "--go", str(go_file), "--batch-size", str(batch_size)], workers)
        with psycopg.connect(_with_schema(dsn, schema), autocommit=True) as conn:

            def done() -> bool:
                return conn.execute("SELECT 1 FROM peer_tasks WHERE state <> 'filed' LIMIT 1").fetchone() is None

            started = time.perf_counter()
            go_file.touch()
            try:
                _wait_done(done, timeout=max(300.0, tasks / 20))
                elapsed = time.perf_counter() - started
            finally:
                _stop(procs, drain=True)
            events = conn.execute("SELECT count(*) FROM peer_events").fetchone()
            assert events is not None
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {
        "workers": workers,
        "tasks": tasks,
        "seconds": elapsed,
        "tasks_per_s": tasks / elapsed,
        "events_per_task": events[0] / tasks,
        "jobs_per_task": 3,
    }


def run_peer_noop(dsn: str, jobs: int, batch_size: int) -> dict[str, Any]:
    """pgqueuer's own ceiling here: ``jobs`` no-op jobs through one in-process queue manager."""
    import psycopg

    schema = f"bench_noop_{uuid.uuid4().hex[:10]}"
    os.environ["PGQUEUER_SCHEMA"] = schema
    from pgqueuer import PsycopgDriver, QueueManager
    from pgqueuer.domain.settings import db_settings
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    db_settings.cache_clear()

    async def main() -> float:
        conn = await psycopg.AsyncConnection.connect(_with_schema(dsn, schema), autocommit=True)
        queries = Queries(PsycopgDriver(conn))
        await queries.install(create_schema=False)
        await queries.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
        qm = QueueManager(queries)

        @qm.entrypoint("noop")
        async def noop(job: Job) -> None:
            return None

        started = time.perf_counter()
        await qm.run(batch_size=batch_size, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=0.2))
        return time.perf_counter() - started

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        elapsed = asyncio.run(main())
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {"jobs": jobs, "seconds": elapsed, "jobs_per_s": jobs / elapsed, "tasks_per_s_at_3_jobs": jobs / elapsed / 3}


# -- the run -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts on PostgreSQL")
    parser.add_argument("--peer-workers", default="1,4", help="pgqueuer worker process counts")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--peer-batch-size", type=int, default=50)
    parser.add_argument(
        "--peer-tasks", type=int, default=3000, help="tasks driven through the job-queue peer (it is slow)"
    )
    parser.add_argument("--role", choices=("main", "engine-worker", "peer-worker"), default="main")
    parser.add_argument("--store")
    parser.add_argument("--go", type=Path)
    parser.add_argument("--schema")
    parser.add_argument("--bodies", type=Path)
    args = parser.parse_args(argv)
    if args.role == "engine-worker":
        return engine_worker(args.store, args.go, args.batch_size)
    if args.role == "peer-worker":
        return peer_worker(args.dsn, args.schema, args.bodies, args.peer_tasks, args.go, args.batch_size)

    import fcntl

    import psycopg

    # tests/test_workers_pg.py restarts the server under an exclusive lock on this file: not during a run
    restart_lock = open(RESTART_LOCK, "a+")  # noqa: SIM115 - held until the process exits
    fcntl.flock(restart_lock.fileno(), fcntl.LOCK_SH)
    RESULTS.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "benchmark": "workers_postgres",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
        "tasks": args.tasks,
        "events_per_task": 9,
        "batch_size": args.batch_size,
        "load_average_at_start": os.getloadavg(),
    }
    with psycopg.connect(args.dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        result["postgresql"] = row[0] if row else "?"
        for name in ("synchronous_commit", "fsync", "shared_buffers"):
            row = conn.execute(f"SHOW {name}").fetchone()
            result[f"pg_{name}"] = row[0] if row else "?"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sqlite_path = tmp / "engine.sqlite3"
        result["sqlite"] = run_engine(str(sqlite_path), args.tasks, 1, args.batch_size, tmp)
        print(f"sqlite      1 worker   {result['sqlite']['tasks_per_s']:>9,.0f} tasks/s", flush=True)
        for workers in [int(w) for w in args.workers.split(",") if w]:
            schema = f"bench_w{workers}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                res = run_engine(_store_dsn(args.dsn, schema), args.tasks, workers, args.batch_size, tmp)
            finally:
                with psycopg.connect(args.dsn, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            result[f"postgres_{workers}"] = res
            print(f"postgres    {workers} worker(s) {res['tasks_per_s']:>9,.0f} tasks/s", flush=True)
        for workers in [int(w) for w in args.peer_workers.split(",") if w]:
            res = run_peer(args.dsn, sqlite_path, min(args.peer_tasks, args.tasks), workers, args.peer_batch_size, tmp)
            result[f"pgqueuer_{workers}"] = res
            print(f"pgqueuer    {workers} worker(s) {res['tasks_per_s']:>9,.0f} tasks/s", flush=True)
    if args.peer_workers:
        noop = run_peer_noop(args.dsn, 3000, args.peer_batch_size)
        result["pgqueuer_noop_1"] = noop
        print(f"pgqueuer    no-op jobs {noop['jobs_per_s']:>9,.0f} jobs/s (its ceiling: 3 jobs a task)", flush=True)
    ratios: dict[str, float] = {}
    pg1 = result.get("postgres_1", {}).get("tasks_per_s")
    if pg1:
        ratios["postgres_1_to_sqlite"] = pg1 / result["sqlite"]["tasks_per_s"]
        for key in ("postgres_2", "postgres_4"):
            if key in result:
                ratios[f"{key}_to_postgres_1"] = result[key]["tasks_per_s"] / pg1
        for key in ("pgqueuer_1", "pgqueuer_4"):
            if key in result:
                ratios[f"postgres_1_to_{key}"] = pg1 / result[key]["tasks_per_s"]
        if "postgres_4" in result and "pgqueuer_4" in result:
            ratios["postgres_4_to_pgqueuer_4"] = (
                result["postgres_4"]["tasks_per_s"] / result["pgqueuer_4"]["tasks_per_s"]
            )
    result["ratios"] = ratios
    result["load_average_at_end"] = os.getloadavg()
    result["floor"] = {
        "postgres_1_at_least_1000_tasks_per_s": bool(pg1 and pg1 >= 1000),
        "postgres_1_at_least_5x_pgqueuer_1": bool(ratios.get("postgres_1_to_pgqueuer_1", 0) >= 5),
    }
    out = RESULTS / "postgres.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
