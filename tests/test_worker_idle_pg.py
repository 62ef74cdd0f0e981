"""An idle worker does not spin on another worker's leases (PostgreSQL; issue 23).

A worker killed while it held leases leaves its tasks due but unclaimable until the leases end. The
surviving workers' idle wait used to be the earliest ``due_at`` over all tasks, leased ones included, which
was in the past: a wait of zero, a busy loop of claims. Now the wait runs to the end of the lease.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from delivery_sdk.events import TaskCreated
from delivery_sdk.store import NewTask
from delivery_sdk.store.postgres import PostgresStore
from delivery_sdk.testing import make_party, make_request
from delivery_sdk.worker import Worker, WorkerConfig


def new_task(task_id: str, due_at: datetime) -> NewTask:
    request = make_request(make_party(f"P-{task_id}"))
    created = TaskCreated(task_id=task_id, at=due_at, request=request)
    return NewTask(
        task_id=task_id, client_key=None, fingerprint="fp", case_key=request.case.key, created=created, due_at=due_at
    )


def test_an_idle_worker_sleeps_while_another_worker_holds_leases(pg_dsn: str) -> None:
    now = datetime.now(UTC)
    killed = PostgresStore(pg_dsn, owner="killed-worker")
    survivor = PostgresStore(pg_dsn, owner="survivor")
    try:
        tasks: list[NewTask] = [new_task(f"T{i}", due_at=now - timedelta(seconds=1)) for i in range(3)]
        killed.create_tasks(tasks)
        assert len(killed.claim_due(now, 10, now + timedelta(minutes=5))) == 3  # ...and it dies holding them
        assert survivor.next_due_at(now) == killed_lease_end(killed)
        worker = Worker(survivor, config=WorkerConfig(idle_poll=0.5), load_entry_points=False)
        before = survivor.transactions

        async def run_for(seconds: float) -> None:
            runner = asyncio.ensure_future(worker.run())
            await asyncio.sleep(seconds)
            worker.stop()
            await runner

        asyncio.run(run_for(2.0))
        claims = survivor.transactions - before
        # one claim per idle_poll (0.5 s) at most, and the release on the way out: a spinning worker made
        # thousands of claims in the same time
        assert claims <= 8, f"{claims} write transactions in 2 s while idle"
        assert worker.tasks_processed == 0  # the leases hold: nothing was taken from the killed worker yet
    finally:
        killed.close()
        survivor.close()


def killed_lease_end(store: PostgresStore) -> datetime:
    with store._read() as cur:
        cur.execute("SELECT MIN(lease_until) FROM tasks")
        row = cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
