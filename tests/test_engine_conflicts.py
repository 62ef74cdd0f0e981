"""Optimistic writes give up with a typed error (issue 18): a task that keeps changing under a write raises
TaskKeptChanging naming it, after a bounded number of attempts, and nothing of that write is recorded. And the
store's optional features are used only as the store declares them (TaskStore.capabilities)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from delivery_sdk import Receipt, ReceiptKind, SQLiteStore, TaskKeptChanging
from delivery_sdk._conflicts import ATTEMPTS, Conflict, until_committed
from delivery_sdk.events import Cancelled
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.store import CommitResult, StoreCapabilities, TaskWrite
from delivery_sdk.testing import Harness, Outcome, make_party, make_request


class _Contended(SQLiteStore):
    """A store where, once armed, every commit after the first ``let_through`` loses to another writer."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.armed = False
        self.let_through = 0
        self.lost = 0

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        if self.armed and writes:
            if self.let_through > 0:
                self.let_through -= 1
            else:
                self.lost += 1
                return CommitResult(stored=(), conflicts=frozenset(w.task_id for w in writes))
        return super().commit(writes, returning=returning)


def test_until_committed_retries_a_bounded_number_of_times_then_names_the_tasks() -> None:
    calls: list[int] = []

    def always() -> str | Conflict:
        calls.append(1)
        return Conflict(["T1"])

    with pytest.raises(TaskKeptChanging, match="T1 kept changing") as caught:
        until_committed(always, "testing")
    assert len(calls) == ATTEMPTS
    assert (caught.value.task_ids, caught.value.attempts) == (("T1",), ATTEMPTS)
    results: list[str | Conflict] = [Conflict(["T1"]), "done"]
    assert until_committed(lambda: results.pop(0), "testing") == "done"


def _world() -> tuple[Harness, _Contended]:
    store = _Contended()
    h = Harness(store)
    h.sms.default = Outcome.delivered()
    h.eservice.default = Outcome.delivered()
    return h, store


def test_recording_on_a_task_that_keeps_changing_raises_and_records_nothing() -> None:
    async def main() -> None:
        h, store = _world()
        task_id = await h.client.submit(make_request(make_party()))
        before = len(store.load_events([task_id])[task_id])
        store.armed = True
        with pytest.raises(TaskKeptChanging) as caught:
            h.client.engine.record(task_id, Cancelled(task_id=task_id, at=h.clock.now(), reason="withdrawn"))
        assert caught.value.task_ids == (task_id,)
        assert store.lost == ATTEMPTS
        assert len(store.load_events([task_id])[task_id]) == before
        await h.aclose()

    asyncio.run(main())


def test_ingesting_on_a_task_that_keeps_changing_raises_and_records_nothing() -> None:
    async def main() -> None:
        h, store = _world()
        h.sms.default = Outcome.no_answer()
        h.eservice.default = Outcome.no_answer()
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.engine.step()
        task = h.client.engine.load_task(task_id)
        dispatch_id = task.dispatches[0].dispatch_id
        before = len(store.load_events([task_id])[task_id])
        store.armed = True
        receipt = Receipt(
            dispatch_id=dispatch_id, kind=ReceiptKind.DELIVERED, at=h.clock.now(), provider_event_id="e-1"
        )
        with pytest.raises(TaskKeptChanging, match="ingesting a report"):
            h.client.engine.ingest(receipt)
        assert len(store.load_events([task_id])[task_id]) == before
        await h.aclose()

    asyncio.run(main())


def test_a_step_whose_results_keep_losing_raises() -> None:
    async def main() -> None:
        h, store = _world()
        await h.client.submit(make_request(make_party()))
        store.armed, store.let_through = True, 1  # the intents commit; every commit of the results loses
        with pytest.raises(TaskKeptChanging, match="committing a step's results"):
            await h.client.engine.step()
        assert store.lost == ATTEMPTS
        await h.aclose()

    asyncio.run(main())


class _Bare(SQLiteStore):
    """A store that declares no optional feature (as a third-party store may)."""

    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities()


def test_features_a_store_does_not_declare_are_not_used() -> None:
    """The engine signs no checkpoint and keeps no refusal where the store declares no evidence log and no
    refusal counts, though the SQLite methods are there: it asks the declaration, never the methods."""

    async def main() -> None:
        store = _Bare(":memory:", evidence=True)
        h = Harness(store)
        h.sms.default = Outcome.delivered()
        h.eservice.default = Outcome.delivered()
        h.client.engine.signers = (Signer.generate("court-test"),)
        h.client.engine.witness = None
        await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(days=1))
        assert h.client.engine.checkpoint() is None
        assert store.evidence is not None
        assert store.evidence.checkpoints() == []
        await h.aclose()

    asyncio.run(main())


def test_the_stores_declare_their_features(store_factory: Any) -> None:
    """Both stores keep an evidence log and refusal counts; only SQLite (one engine per file) has an engine
    lock."""
    store = store_factory()
    caps = store.capabilities()
    assert caps.evidence is store
    assert caps.refusals is store
    assert caps.engine_lock is (None if store_factory.postgres else store)
