"""The engine: the only loop that orchestrates I/O.

One :meth:`Engine.step` works a batch of due tasks:

1. claim due tasks from the store (leased) and load them (from a cache of folded tasks, or by folding
   their events);
2. ask the pure policy what to do; record the events it decides on, and for every send record the
   *intent* (``dispatch.queued`` + an outbox row with the stable dispatch id) - all tasks of the batch in
   **one transaction**;
3. perform the I/O concurrently (bounded per channel, transient errors retried with tenacity): send,
   ask for a dispatch's status, route, search an address, file the proof of service;
4. record the results and what the policy decides from them - again one transaction for the batch;
5. hand the committed events to evidence sinks and observers.

After a crash, a dispatch whose intent is committed but whose result is not is *in doubt*: the policy
asks the adapter for its status (``Reconcile``) and sends only if the provider never received it; the
dispatch id is the provider's idempotency key besides. Inbound receipts go through :meth:`Engine.ingest`,
idempotent on the provider's event id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from . import _checkpointing, _ingest, _inline, _sending
from ._conflicts import Conflict, until_committed
from ._exceptions import IllegalTransition, TaskKeptChanging, TransientChannelError, log_summary
from ._fast import GC_PAUSE_WAIT, CallLimit, GCPause
from ._ingest import IngestResult
from ._work import Work as _Work
from .channels import ChannelAdapter, Receipt
from .clock import Clock
from .events import DispatchQueued, Event, NeedsAttention, Served, StoredEvent, TaskCreated
from .evidence.keys import Signer
from .evidence.witness import default_witness_path
from .lifecycle import PROVIDER_FACTS, TERMINAL, Task, TaskState, apply, event_is_news, fold, new_task
from .model import ChannelKind, Dispatch, DispatchRecord
from .plugins import PluginHost
from .policy import (
    Action,
    Decision,
    Emit,
    File,
    IngestOutcome,
    PolicyConfig,
    Poll,
    Reconcile,
    Route,
    SearchAddress,
    Send,
    decide,
    file_with_service,
)
from .printing.load import RoutedToday
from .records import EvidenceBatch
from .retry import RetryConfig, retry_after
from .store import OutboxEntry, TaskStore, TaskWrite

__all__ = ["GC_PAUSE_WAIT", "Engine", "EngineConfig", "IngestOutcome", "IngestResult"]

log = logging.getLogger("delivery_sdk.engine")

# Enum members and tuples the hot paths compare against, read once here (before any use).
_PRINT, _POST = ChannelKind.PRINT, ChannelKind.POST
_POSTAL_KINDS = frozenset({ChannelKind.PRINT, ChannelKind.POST})
_INLINE = (Route, SearchAddress)  # decision hooks the policy's actions run inline

# the engine's own actions, as the health report names what keeps failing
_COMPONENTS = {"Route": "print routing", "SearchAddress": "address search", "File": "filing"}


@attrs.frozen(kw_only=True)
class EngineConfig:
    """How the engine works: batch size, lease length, concurrency per channel, retries, task cache and the I/O errors
    tolerated before a person is asked."""

    batch_size: int = 256
    lease: timedelta = timedelta(minutes=5)
    channel_concurrency: int = 64  # in-flight calls per channel adapter
    retry: RetryConfig = attrs.field(factory=RetryConfig)
    cache_size: int = 50_000  # folded tasks kept in memory (terminal ones are dropped at once)
    max_io_errors: int = 5  # consecutive failed I/O attempts on one task before a person is asked
    io_rounds: int = 3  # rounds of sends/status calls per step (each round commits once)
    checkpoint_every_events: int = 10_000  # sign a checkpoint of the evidence log after this many events...
    checkpoint_every: timedelta = timedelta(minutes=1)  # ...or this much time, and whenever the engine is idle
    # hold the cyclic GC off while a step works (see _fast.GCPause), up to 50 ms of its I/O: off in a library (the
    # collector is the host's), on in `delivery-sdk worker`, a process the SDK owns
    pause_gc: bool = False
    # how far a provider's clock may be from ours: a reported time is believed from this much before the
    # dispatch was queued to this much after now (delivery_sdk.trust.implausible_time)
    clock_skew: timedelta = timedelta(minutes=5)


class Engine:
    """Works due tasks through the policy and the plugins; see the module docstring."""

    def __init__(
        self,
        store: TaskStore,
        host: PluginHost,
        clock: Clock,
        *,
        policy: PolicyConfig | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.clock = clock
        self.policy = policy or PolicyConfig()
        self.config = config or EngineConfig()
        self._cache: collections.OrderedDict[str, Task] = collections.OrderedDict()
        self._limits: dict[str, CallLimit] = {}
        self._wake = asyncio.Event()
        self._kinds: dict[ChannelKind, str] | None = None
        self._adapters: dict[ChannelKind, tuple[str, ...]] | None = None
        self._errors: dict[str, int] = {}
        # for the worker's health: component ("channel sms"...) -> (failures in a row, last error) until it works
        self.failing: dict[str, tuple[int, str]] = {}
        self._conflicted: frozenset[str] = frozenset()
        self.signers: Sequence[Signer] = ()  # evidence checkpoint keys; none: no checkpoints are signed
        self.origin: str | None = None  # the evidence log's name in its checkpoints; None: the first key's name
        # the last checkpoint signed, kept outside the store (evidence/witness.py); None: not kept
        self.witness: Path | None = default_witness_path(store)
        self.unsigned_events = 0  # committed events not yet under a signed checkpoint
        self.last_checkpoint: datetime | None = None
        self.steps = 0
        self.routed_today = RoutedToday()  # print jobs per centre today, from the store (capacity)
        # while a step (or a submit) computes, the cyclic GC is paused: see _fast.GCPause
        self.computing = GCPause(self.config.pause_gc)
        # the store's optional features (evidence log, refusal counts), as it declares them
        self.capabilities = store.capabilities()
        self.refusals = _ingest.Refusals(self.capabilities.refusals)  # refused receipts not yet in the store

    # -- channels ------------------------------------------------------------------------------------

    @property
    def channel_kinds(self) -> dict[ChannelKind, str]:
        """The first adapter of each channel kind in the host's order (``DELIVERY_SDK_CHANNEL_ORDER``, see
        :mod:`delivery_sdk.plugins`): the one a kind without adapter routes uses."""
        if self._kinds is None:
            self._kinds = {}
            for adapter in self.host.channels:
                self._kinds.setdefault(adapter.kind, adapter.name)
        return self._kinds

    @property
    def channel_adapters(self) -> dict[ChannelKind, tuple[str, ...]]:
        """Every adapter of each channel kind, ``channel_kinds``' first, then in the host's order: the policy
        chooses among them (``PolicyConfig.adapters``, :mod:`delivery_sdk.adapters`)."""
        if self._adapters is None:
            adapters: dict[ChannelKind, tuple[str, ...]] = {k: (name,) for k, name in self.channel_kinds.items()}
            for a in self.host.channels:
                if a.name not in adapters.get(a.kind, ()):
                    adapters[a.kind] = (*adapters.get(a.kind, ()), a.name)
            self._adapters = adapters
        return self._adapters

    def _adapter(self, dispatch: Dispatch) -> ChannelAdapter:
        if dispatch.kind is _PRINT:
            if dispatch.waybill is not None and _POST in self.channel_kinds:
                return self.host.channels.get(self.channel_kinds[_POST])
            return self.host.print_centres.adapter(dispatch.centre_id or dispatch.channel)
        return self.host.channels.get(dispatch.channel)

    def _limit(self, adapter: str) -> CallLimit:
        """The adapter's one limit, whatever the operation (send, status): ``channel_concurrency`` calls."""
        limit = self._limits.get(adapter)
        if limit is None:
            limit = self._limits[adapter] = CallLimit(self.config.channel_concurrency)
        return limit

    async def aclose(self) -> None:
        """Close every channel adapter that was built (each once); adapters never built are not built to close them."""
        seen: set[int] = set()
        adapters: list[ChannelAdapter] = self.host.built_adapters()  # never builds (nor fails) to close
        for adapter in adapters:
            if id(adapter) in seen:
                continue
            seen.add(id(adapter))
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing channel adapter %s failed", getattr(adapter, "name", "?"))

    def wake(self) -> None:
        """Tell :meth:`run_forever` that something became due (a submit, an ingest)."""
        self._wake.set()

    # -- loading -------------------------------------------------------------------------------------

    def _remember(self, task: Task) -> None:
        cache = self._cache
        if task.state in TERMINAL:
            cache.pop(task.task_id, None)
            return
        cache[task.task_id] = task
        cache.move_to_end(task.task_id)
        while len(cache) > self.config.cache_size:
            cache.popitem(last=False)

    def load(self, wanted: Sequence[tuple[str, int]]) -> dict[str, Task]:
        """Folded tasks at the given versions (cached, or folded from the store's events)."""
        out: dict[str, Task] = {}
        missing: list[str] = []
        for task_id, version in wanted:
            cached = self._cache.get(task_id)
            if cached is not None and cached.version == version:
                out[task_id] = cached
            else:
                missing.append(task_id)
        if missing:
            for task_id, stored in self.store.load_events(missing).items():
                task = fold([s.event for s in stored])
                out[task_id] = task
                self._remember(task)
        return out

    def created(self, stored: Sequence[StoredEvent]) -> None:
        """Learn of newly created tasks (cached folded, so their first step reads nothing back)."""
        for item in stored:
            if isinstance(item.event, TaskCreated):
                self._remember(new_task(item.event))
        self._publish(stored)
        self.wake()

    def load_task(self, task_id: str) -> Task:
        """The folded task ``task_id`` at its current version; :class:`UnknownTask` if absent."""
        row = self.store.task_row(task_id)
        return self.load([(task_id, row.version)])[task_id]

    # -- the step ------------------------------------------------------------------------------------

    def _dispatch_for(self, task: Task, record: DispatchRecord) -> Dispatch:
        request = task.request
        return Dispatch(
            dispatch_id=record.dispatch_id,
            task_id=task.task_id,
            channel=record.channel,
            kind=record.kind,
            contact=record.contact,
            case=request.case,
            recipient_name=request.party.name,
            documents=request.documents,
            centre_id=record.centre_id,
            waybill=record.waybill,
            recipient_phone=_inline.postal_phone(task) if record.kind in _POSTAL_KINDS else None,
        )

    def apply_event(self, work: _Work, event: Event) -> bool:
        """Apply ``event`` to the work's task and keep it for the write; False (logged) if the lifecycle refuses it."""
        try:
            work.task = apply(work.task, event)
        except IllegalTransition as exc:
            log.warning("dropped an event the lifecycle refused: %s", exc)
            return False
        work.events.append(event)
        return True

    def _queue(self, work: _Work, action: Send, now: datetime) -> Dispatch | None:
        task = work.task
        contact = task.postal_address if action.kind is _PRINT else task.first_contact(action.kind.contact_kind)
        if contact is None:
            return None
        dispatch_id = f"{task.task_id}.{len(task.dispatches) + 1}"
        event = DispatchQueued(
            task_id=task.task_id,
            at=now,
            dispatch_id=dispatch_id,
            channel=action.channel,
            kind=action.kind,
            contact=contact,
            centre_id=action.centre_id,
        )
        if not self.apply_event(work, event):
            return None
        work.outbox.append(OutboxEntry(dispatch_id=dispatch_id, task_id=task.task_id, channel=action.channel))
        record = work.task.dispatch(dispatch_id)
        assert record is not None
        return self._dispatch_for(work.task, record)

    def _advance(self, work: _Work, now: datetime, *, allow_io: bool) -> None:
        """Run the policy until it asks for network I/O or for time to pass; record what it decides.

        Decision hooks (routing, address search) run inline. Filing runs inline when the task's service is
        already committed (the case-file sink is an after-commit hook) or when no case-file sink is registered
        (nothing leaves the engine: the filing commits with the service); otherwise it waits for
        :meth:`_file_served`. Sends and status calls are collected in ``work.io`` when ``allow_io``, or
        left for the next step.
        """
        policy, kinds, done = self.policy, self.channel_adapters, work.done
        for _ in range(32):
            decision: Decision = decide(work.task, now, policy, kinds)
            progressed = False
            rest: list[Action] = []
            for action in decision.actions:
                if isinstance(action, Emit):
                    progressed = self.apply_event(work, action.event) or progressed
                else:
                    rest.append(action)
            network: list[Action] = []
            for action in rest:
                if done and action in done:
                    continue
                if isinstance(action, _INLINE) or (
                    isinstance(action, File)
                    and file_with_service(any(isinstance(e, Served) for e in work.events), self.host.has_filing_sinks())
                ):
                    done.append(action)
                    self._guarded(work, action, now)
                    progressed = True
                elif isinstance(action, File):
                    work.file_after_commit = True
                else:
                    network.append(action)
            if network:
                if allow_io:
                    self._collect(work, network, now)
                    work.due_at = decision.due_at
                else:
                    work.due_at = now
                return
            if not progressed:
                work.due_at = decision.due_at
                return
        work.due_at = now

    def _collect(self, work: _Work, actions: list[Action], now: datetime) -> None:
        for action in actions:
            dispatch = None
            if isinstance(action, Send):
                dispatch = self._queue(work, action, now)
                if dispatch is None:
                    reason = f"no contact for {action.kind.value}"
                    self.apply_event(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
                    continue
            elif isinstance(action, Poll | Reconcile):
                record = work.task.dispatch(action.dispatch_id)
                assert record is not None
                dispatch = self._dispatch_for(work.task, record)
            work.io.append((action, dispatch))

    async def step(self) -> int:
        """Work one batch of due tasks; returns how many were claimed."""
        now = self.clock.now()
        with self.computing:
            claimed = self.store.claim_due(now, self.config.batch_size, now + self.config.lease)
            if not claimed:
                return 0
            self.steps += 1
            tasks = self.load(claimed)
            works = [_Work(task=tasks[t], base_version=tasks[t].version) for t, _ in claimed if t in tasks]
            _checkpointing.prefetch_timelines(self, works)
            for work in works:
                self._advance(work, now, allow_io=True)
            # One transaction for every intent and decision of the batch; tasks with nothing to record and no
            # I/O only need their due time moved (and their lease ended).
            first = self.store.commit(
                [w.write(release=not w.io) for w in works if w.events or not w.io], returning=self._listening()
            )
            self._after_commit(first.stored, works, first.conflicts)
            busy = [w for w in works if w.io and w.task.task_id not in first.conflicts]
        # Rounds of I/O: the results of one round (a failure, say) may call for the next send at once; its
        # intent commits with those results, so a task moves through several channels in one step.
        for round_ in range(self.config.io_rounds):
            if not busy:
                break
            for work in busy:
                work.reset(keep_io=True)
            await self.computing.waiting(self._perform_all(busy, now))
            with self.computing:
                last = round_ == self.config.io_rounds - 1
                for work in busy:
                    work.io = []
                    self._advance(work, now, allow_io=not last)
                committed = self._commit_results(busy, now)
                busy = [w for w in committed if w.io]
        with self.computing:
            self._file_served([w for w in works if w.file_after_commit], now)
            _checkpointing.maybe_checkpoint(self, now)
            if self.refusals.pending:
                try:
                    self.refusals.keep()
                except Exception:
                    log.exception("could not record refused receipts; they are in the log")
        return len(claimed)

    # -- evidence checkpoints ------------------------------------------------------------------------

    @property
    def log_origin(self) -> str:
        """The evidence log's name in its checkpoints: :attr:`origin` if set, else the first signer key's name."""
        if self.origin:
            return self.origin
        return self.signers[0].name if self.signers else "delivery-sdk"

    def checkpoint(self, now: datetime | None = None) -> str | None:
        """Sign a checkpoint of the evidence log now (if there is anything new and a key is configured) and
        hand it to the evidence sinks; returns the signed note.

        The new checkpoint must extend the last one signed: the one in :attr:`witness` (a file outside the
        store, replaced after each checkpoint) and the store's latest. If it does not (the database was rolled
        back or rewritten, the log renamed), :class:`~delivery_sdk.EvidenceForkError` is raised, nothing is
        signed, and the error stops the engine's step: see ``docs/evidence.md``."""
        return _checkpointing.checkpoint(self, now or self.clock.now())

    def _file_served(self, works: list[_Work], now: datetime) -> None:
        """File the tasks whose service was committed in this step, then commit the filings."""
        ready = [w for w in works if w.task.state is TaskState.SERVED and w.task.task_id not in self._conflicted]
        if not ready:
            return
        for work in ready:
            work.reset()
            work.file_after_commit = False
        _checkpointing.prefetch_timelines(self, ready)
        for work in ready:
            self._advance(work, now, allow_io=False)
        self._commit_results(ready, now)

    def _after_commit(self, stored: Sequence[StoredEvent], works: Sequence[_Work], conflicts: frozenset[str]) -> None:
        self._conflicted = conflicts
        for work in works:
            if work.task.task_id in conflicts:
                self._cache.pop(work.task.task_id, None)
            else:
                self.unsigned_events += len(work.events)
                self._remember(work.task)
        self._publish(stored)

    def _listening(self) -> bool:
        return self.host.has_evidence_sinks() or self.host.has_observers()

    def _publish(self, stored: Sequence[StoredEvent]) -> None:
        if not stored:
            return
        if self.host.has_evidence_sinks():
            _checkpointing.to_sinks(self, EvidenceBatch(events=tuple(stored)))
        if self.host.has_observers():
            for event in stored:
                try:
                    self.host.task_event(event)
                except Exception:
                    log.exception("an observer failed on event %s", event.seq)

    def _commit_results(self, works: list[_Work], now: datetime) -> list[_Work]:
        """Commit I/O results; a task that moved on meanwhile (an ingest) gets its facts re-applied.

        Returns the works as committed. A re-applied work loses the intents it had queued (they were never
        committed, so nothing was sent): the policy queues them again in a later step.
        """
        pending = works

        def once() -> list[_Work] | Conflict:
            nonlocal pending
            result = self.store.commit([w.write(release=not w.io) for w in pending], returning=self._listening())
            self._after_commit(result.stored, pending, result.conflicts)
            if not result.conflicts:
                return works
            pending = [w for w in pending if w.task.task_id in result.conflicts]
            fresh = self.load([(w.task.task_id, self.store.task_row(w.task.task_id).version) for w in pending])
            for work in pending:
                self._redo(work, fresh[work.task.task_id], now)
            return Conflict(result.conflicts)

        try:
            return until_committed(once, "committing a step's results")
        except TaskKeptChanging:
            self._conflicted = frozenset()
            raise

    def _redo(self, work: _Work, task: Task, now: datetime) -> None:
        """Redo a work whose task moved on (an ingest): only what providers told us is re-applied, and only if
        still news (the ingest may have recorded the same report); the policy decides the rest afresh."""
        facts = [e for e in work.events if isinstance(e, PROVIDER_FACTS)]
        done, keys = work.outbox_done, work.receipt_keys  # reset() clears them; the results still stand
        work.task = task
        work.reset()
        # the inline actions' events (routing, address search, filing) were dropped with the write: they run
        # again; only the I/O stays done (its results are the facts re-applied)
        work.done = [a for a in work.done if not isinstance(a, (*_INLINE, File))]
        work.outbox_done = [d for d in done if work.task.dispatch(d) is not None]
        work.receipt_keys = keys
        for event in facts:
            if event_is_news(work.task, event):
                self.apply_event(work, event)
        self._advance(work, now, allow_io=False)

    # -- I/O -----------------------------------------------------------------------------------------

    async def _call(self, adapter: str, operation: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` (one provider call) within the adapter's limit, retried as :mod:`delivery_sdk.retry` says."""
        limit = self._limit(adapter)
        if not limit.try_acquire():
            await limit.wait()
        name = f"{adapter}.{operation}"
        try:
            try:  # call_with_retries, its first attempt inlined (one coroutine less per provider call)
                return await fn()
            except TransientChannelError as error:
                return await retry_after(name, fn, error, config=self.config.retry, sleep=self.clock.sleep)
        finally:
            limit.release()

    def _failed(
        self, work: _Work, action: Action, now: datetime, exc: BaseException, component: str | None = None
    ) -> None:
        """Never guess after a failure: the policy looks again after ``retry_after_error``, and an in-doubt
        send is reconciled through the provider's status, never re-sent blindly. A task that keeps failing
        goes to a person instead of looping."""
        task_id = work.task.task_id
        count = self._errors[task_id] = self._errors.get(task_id, 0) + 1
        error = log_summary(exc)
        component = component or _COMPONENTS.get(type(action).__name__, type(action).__name__.lower())
        self.failing[component] = (self.failing.get(component, (0, ""))[0] + 1, error)
        log.warning("task %s: %s failed (%d): %s", task_id, type(action).__name__, count, error)
        if count >= self.config.max_io_errors:
            self._errors.pop(task_id, None)
            reason = f"{type(action).__name__.lower()} failed {count} times ({type(exc).__name__})"
            self.apply_event(work, NeedsAttention(task_id=task_id, at=now, reason=reason))

    def _guarded(self, work: _Work, action: Action, now: datetime) -> None:
        try:
            self._perform_sync(work, action, now)
        except Exception as exc:
            self._failed(work, action, now, exc)
        else:
            if self.failing:
                self.failing.pop(_COMPONENTS.get(type(action).__name__, type(action).__name__.lower()), None)
            if self._errors:
                self._errors.pop(work.task.task_id, None)

    def _perform_sync(self, work: _Work, action: Action, now: datetime) -> None:
        if isinstance(action, Route):
            _inline.route(self, work, now)
        elif isinstance(action, SearchAddress):
            _inline.search_address(self, work, now)
        elif isinstance(action, File):
            _inline.file(self, work, now)

    async def _perform_all(self, works: Sequence[_Work], now: datetime) -> None:
        """Run the I/O of a step's works: per channel, up to ``channel_concurrency`` works at once.

        Each channel's works form a queue that that many coroutines work through, one work after another,
        instead of one asyncio task per work (creating a task costs more than a fast provider's answer).
        The channel's semaphore still bounds the calls, whichever work makes them.
        """
        queues: dict[str, list[_Work]] = {}
        for work in works:
            dispatch = work.io[0][1] if work.io else None
            queues.setdefault(dispatch.channel if dispatch is not None else "", []).append(work)
        limit = max(1, self.config.channel_concurrency)

        async def drain(queue: Iterator[_Work]) -> None:
            for work in queue:
                await self._perform(work, now)

        runs: list[Coroutine[Any, Any, None]] = []
        for queue in queues.values():
            shared = iter(queue)
            runs.extend(drain(shared) for _ in range(min(len(queue), limit)))
        if len(runs) == 1:
            await runs[0]
        else:
            await asyncio.gather(*runs)

    async def _perform(self, work: _Work, now: datetime) -> None:
        for action, dispatch in work.io:
            work.done.append(action)
            assert dispatch is not None
            try:
                if isinstance(action, Poll):
                    await _sending.poll(self, work, dispatch, now)
                else:
                    await _sending.send_or_reconcile(self, work, dispatch, now, reconcile=isinstance(action, Reconcile))
            except Exception as exc:
                self._failed(work, action, now, exc, f"channel {dispatch.channel}")
                if work.task.state is TaskState.NEEDS_ATTENTION:
                    return
            else:
                if self.failing:
                    self.failing.pop(f"channel {dispatch.channel}", None)
                if self._errors:
                    self._errors.pop(work.task.task_id, None)

    # -- ingest --------------------------------------------------------------------------------------

    def ingest(self, receipt: Receipt, *, channel: str | None = None) -> IngestResult:
        """Record a provider's receipt (delivery report, read receipt, print/carrier progress).

        Idempotent on ``receipt.provider_event_id``; see :class:`IngestOutcome` for what can come back.

        ``channel`` names the adapter the receipt came through (a channel adapter's name, or a print centre's
        id): its *source*. Code that relays a provider's report (a callback handler, a queue consumer) must
        name it; only the dispatch's own adapters may report on it, each what it can know
        (:mod:`delivery_sdk.trust`), and anything else is :attr:`IngestOutcome.REFUSED`. ``channel=None``
        is a trusted in-process caller (the application itself, a test) speaking for the dispatch's own
        adapter: only the kind is checked against what that dispatch's adapters report.

        A time outside the dispatch's life (before it was queued, or after now, give or take
        :attr:`EngineConfig.clock_skew`) is not applied: :attr:`IngestOutcome.IMPLAUSIBLE_TIME`, and the task
        goes to a person unless its service is already decided. Refusals of both kinds are counted in the
        store (``refused_receipts``, shown by supervision); nothing of the receipt's content is kept. A task
        that keeps changing under the ingest raises :class:`~delivery_sdk.TaskKeptChanging`.
        """
        return _ingest.ingest(self, receipt, channel)

    def carrier_requirements(self) -> tuple[str | None, frozenset[str]]:
        """The carrier the postal leg uses (its adapter name, or None) and what its waybills need
        (``requires``: :data:`~delivery_sdk.channels.WAYBILL_REQUIREMENTS`)."""
        return _inline.carrier_requirements(self)

    def write_one(
        self, task: Task, after: Task, event: Event, *, due_at: datetime | None, receipt_keys: tuple[str, ...] = ()
    ) -> StoredEvent | Conflict:
        """Commit one event on ``task`` (``after`` is the task with it applied), unless the task moved on
        meanwhile (then a :class:`~delivery_sdk._conflicts.Conflict`: read it again and redo)."""
        write = TaskWrite(
            task_id=task.task_id,
            expected_version=task.version,
            events=(event,),
            state=after.state.value,
            due_at=due_at,
            release=False,
            receipt_keys=receipt_keys,
        )
        result = self.store.commit([write])
        if task.task_id in result.conflicts:
            self._cache.pop(task.task_id, None)
            return Conflict((task.task_id,))
        self._remember(after)
        self._publish(result.stored)
        self.wake()
        return result.stored[0]

    # -- a person's decisions ------------------------------------------------------------------------

    def record(self, task_id: str, event: Event) -> StoredEvent:
        """Record an event decided by a person (cancel, resume, a new address); the lifecycle must allow it.
        A task that keeps changing meanwhile raises :class:`~delivery_sdk.TaskKeptChanging`."""

        def once() -> StoredEvent | Conflict:
            task = self.load_task(task_id)
            after = apply(task, event)
            return self.write_one(task, after, event, due_at=None if after.terminal else self.clock.now())

        return until_committed(once, f"recording {event.TYPE}")

    # -- running -------------------------------------------------------------------------------------

    async def run_until_idle(self, *, until: datetime | None = None, max_steps: int | None = None) -> int:
        """Work until nothing is due. With a virtual clock, jump it to each next due moment (up to ``until``)
        so waiting tasks complete too; with the system clock, return as soon as nothing is due now."""
        steps = 0
        while max_steps is None or steps < max_steps:
            worked = await self.step()
            steps += 1 if worked else 0
            if worked:
                continue
            now = self.clock.now()
            nxt = self.store.next_due_at(now)
            if self.unsigned_events:
                self.checkpoint(now)  # idle: every committed event gets under a signed checkpoint
            if nxt is None or nxt <= now or not self.clock.virtual:
                return steps
            if until is not None and nxt > until:
                self.clock.advance_to(until)
                return steps
            self.clock.advance_to(nxt)
        return steps

    async def run_forever(self, stop: asyncio.Event | None = None, *, idle_poll: float = 1.0) -> None:
        """Work as tasks become due until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if await self.step():
                continue
            now = self.clock.now()
            nxt = self.store.next_due_at(now)
            if self.unsigned_events:
                self.checkpoint(now)
            wait = idle_poll if nxt is None else max(0.0, min(idle_poll, (nxt - now).total_seconds()))
            if self.clock.virtual and nxt is not None and nxt > now:
                self.clock.advance_to(nxt)
                continue
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()
