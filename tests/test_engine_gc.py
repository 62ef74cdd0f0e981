"""The engine holds the cyclic garbage collector off while a step works, for at most GC_PAUSE_WAIT of
waiting on providers, and always leaves it as it found it (EngineConfig.pause_gc)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from delivery_sdk import ChannelKind, Dispatch, EngineConfig, MockChannel, SendResult, StoreError, TaskState
from delivery_sdk.engine import GC_PAUSE_WAIT
from delivery_sdk.hookspecs import hookimpl
from delivery_sdk.store._base import StoredEvent
from delivery_sdk.testing import Harness, Outcome, channels_plugin, make_party, make_request


class _Watcher:
    """Notes whether the collector was on when an observer saw a committed event (inside a step's
    computing stretch) and when the SMS provider was called (the step's I/O)."""

    def __init__(self) -> None:
        self.at_commit: list[bool] = []  # events the engine committed (not the submit's task.created)
        self.at_submit: list[bool] = []  # task.created, published by the submit
        self.at_send: list[bool] = []

    @hookimpl
    def delivery_task_event(self, event: StoredEvent) -> None:
        (self.at_submit if event.event.TYPE == "task.created" else self.at_commit).append(gc.isenabled())

    def outcome(self, dispatch: Dispatch) -> Outcome:
        self.at_send.append(gc.isenabled())
        return Outcome.delivered()


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:  # pragma: no cover - pytest runs with the collector on
        gc.disable()


def _run(config: EngineConfig | None, watcher: _Watcher) -> TaskState:
    async def main() -> TaskState:
        h = Harness(config=config, extra_plugins=[watcher])
        h.sms.handler = watcher.outcome
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        state = h.client.status(task_id).state
        await h.aclose()
        return state

    return asyncio.run(main())


def test_the_collector_is_paused_while_a_step_works(collector_on: None) -> None:
    watcher = _Watcher()
    assert _run(EngineConfig(pause_gc=True), watcher) is TaskState.FILED
    assert watcher.at_commit  # observers run right after each commit, inside the pause
    assert not any(watcher.at_commit)
    assert watcher.at_send == [False]  # a provider that answers at once: still paused
    assert watcher.at_submit == [False]  # a submit serialises and writes its batch paused too
    assert gc.isenabled()


def test_a_slow_provider_gets_the_collector_back_after_the_pause_limit(collector_on: None) -> None:
    """The pause covers at most GC_PAUSE_WAIT of waiting: a provider slower than that sees it running."""
    seen: list[tuple[bool, bool]] = []

    async def slow(dispatch: Dispatch) -> SendResult:
        before = gc.isenabled()
        await asyncio.sleep(GC_PAUSE_WAIT * 3)
        seen.append((before, gc.isenabled()))
        return SendResult(accepted=False, reason="slow and refused")

    async def main() -> None:
        h = Harness(config=EngineConfig(pause_gc=True))
        h.client.host.register(channels_plugin(MockChannel(slow, name="slow-eservice", kind=ChannelKind.ESERVICE)))
        await h.client.submit(make_request(make_party(eservice="acct-1")))
        await h.client.run_until_idle()
        await h.aclose()

    asyncio.run(main())
    assert seen
    assert seen[0] == (False, True)  # paused when the call started, running again while it waited
    assert gc.isenabled()


def test_a_library_engine_leaves_the_collector_alone_by_default(collector_on: None) -> None:
    """The collector is process-wide: an embedded engine never touches it unless asked (issue 18)."""
    assert EngineConfig().pause_gc is False
    watcher = _Watcher()
    assert _run(None, watcher) is TaskState.FILED
    assert watcher.at_commit
    assert all(watcher.at_commit)
    assert watcher.at_send == [True]
    assert watcher.at_submit == [True]
    assert gc.isenabled()


def test_the_worker_holds_the_collector_off_in_its_own_process() -> None:
    from delivery_sdk.store import SQLiteStore
    from delivery_sdk.worker import Worker

    worker = Worker(SQLiteStore(":memory:"), load_entry_points=False)
    assert worker.engine.config.pause_gc is True


def test_pause_gc_false_leaves_the_collector_alone(collector_on: None) -> None:
    watcher = _Watcher()
    assert _run(EngineConfig(pause_gc=False), watcher) is TaskState.FILED
    assert watcher.at_commit
    assert all(watcher.at_commit)
    assert watcher.at_send == [True]
    assert gc.isenabled()


def test_an_application_that_turned_the_collector_off_keeps_it_off(collector_on: None) -> None:
    gc.disable()
    try:
        watcher = _Watcher()
        assert _run(None, watcher) is TaskState.FILED
        assert watcher.at_send == [False]
        assert not any(watcher.at_commit)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_back_on_when_a_step_fails(collector_on: None) -> None:
    async def main() -> None:
        h = Harness(config=EngineConfig(pause_gc=True))
        await h.client.submit(make_request(make_party()))

        def broken(*args: Any, **kwargs: Any) -> Any:
            assert not gc.isenabled()
            raise StoreError("disk full")

        h.store.commit = broken  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="disk full"):
            await h.client.run_until_idle()
        assert gc.isenabled()
        await h.aclose()

    asyncio.run(main())
