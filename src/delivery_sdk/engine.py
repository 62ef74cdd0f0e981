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
import enum
import gc
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from ._exceptions import (
    ChannelError,
    EvidenceForkError,
    IllegalTransition,
    MalformedReceipt,
    PluginError,
    TransientChannelError,
    UnknownChannel,
    UnsendableDispatch,
)
from .adapters import transient_failover
from .address.resolver import ResolutionStatus
from .address.resolver import resolve as resolve_address
from .channels import (
    RECEIVER_PHONE,
    ChannelAdapter,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    carrier_requires,
)
from .clock import Clock
from .events import (
    FAILED_BY_CARRIER,
    AddressSearchFailed,
    AddressUpdated,
    ConsentRecorded,
    ContactUpdated,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    Enveloped,
    Event,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    ReturnReason,
    Served,
    StoredEvent,
    TaskCreated,
)
from .evidence.keys import Signer
from .evidence.witness import default_witness_path, read_witness, write_witness
from .law.addresses import ADDRESS_BASIS
from .law.service import SignerRole
from .lifecycle import TERMINAL, Task, TaskState, _builder, apply, fold, new_task
from .model import ChannelKind, ConsentMethod, Contact, ContactKind, Dispatch, DispatchRecord, DispatchStatus
from .plugins import PluginHost
from .policy import Action, Decision, Emit, File, PolicyConfig, Poll, Reconcile, Route, SearchAddress, Send, decide
from .printing.load import RoutedToday
from .records import AddressCandidate, EvidenceBatch, PrintJob, ServiceRecord
from .retry import RetryConfig, retry_after
from .store import OutboxEntry, RefusedReceipt, TaskStore, TaskWrite
from .trust import Refusal, Reporter, allowed_reports, implausible_time, provenance_refusal

_ROUTABLE = frozenset({ResolutionStatus.RESOLVED, ResolutionStatus.ASSUMED_HOME_PROVINCE, ResolutionStatus.FUZZY})

__all__ = ["Engine", "EngineConfig", "IngestOutcome", "IngestResult", "receipt_event", "receipt_is_news"]

log = logging.getLogger("delivery_sdk.engine")

# SPC 2017 Opinion order for a party that has not confirmed an address (lower ranks first).
SOURCE_RANK = {
    "confirmation_form": 0,
    "contract": 1,
    "own_filings": 2,
    "litigation": 3,
    "common_use": 4,
    "registry": 5,
    "household_registry": 5,
    "business_registry": 5,
    "postal_database": 6,
    "operator": 7,
}


# the engine's own actions, as the health report names what keeps failing
_COMPONENTS = {"Route": "print routing", "SearchAddress": "address search", "File": "filing"}


def _describe_failure(exc: BaseException) -> str:
    """An error for a log line: its type; a configuration error (PluginError: it names variables and plugins,
    never personal data) with its problems too."""
    if isinstance(exc, PluginError):
        return f"{type(exc).__name__}: {'; '.join(exc.problems) or str(exc)}"[:500]
    return type(exc).__name__


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
    # hold the cyclic GC off while a step works (see _GCPause), up to 50 ms of its I/O: off in a library (the
    # collector is the host's), on in `delivery-sdk worker`, a process the SDK owns
    pause_gc: bool = False
    # how far a provider's clock may be from ours: a reported time is believed from this much before the
    # dispatch was queued to this much after now (delivery_sdk.trust.implausible_time)
    clock_skew: timedelta = timedelta(minutes=5)


class IngestOutcome(enum.Enum):
    """What became of an ingested report: accepted, out of order, duplicate, late, unknown dispatch or refused."""

    ACCEPTED = "accepted"  # recorded; the engine will act on it
    OUT_OF_ORDER = "out_of_order"  # recorded although an earlier stage was never reported (read before delivered)
    DUPLICATE = "duplicate"  # this provider event (or this exact fact) was recorded before; nothing written
    LATE = "late"  # recorded for the evidence, but the task had already moved on; no effect on service
    UNKNOWN_DISPATCH = "unknown_dispatch"  # no such dispatch in this store; nothing written
    # not the dispatch's own adapter, or a report that adapter cannot make: no task changed; the refusal is
    # counted (supervision's refused receipts)
    REFUSED = "refused"
    # a time before the dispatch was queued or after now (give or take EngineConfig.clock_skew): not applied;
    # the task goes to a person (needs attention) unless it was already served; counted like a refusal
    IMPLAUSIBLE_TIME = "implausible_time"


@attrs.frozen(kw_only=True)
class IngestResult:
    """The result of ingesting one report: its outcome, the task and event type it touched, and why it was refused if it
    was."""

    outcome: IngestOutcome
    task_id: str | None = None
    event_type: str | None = None
    message: str = ""
    refusal: str | None = None  # REFUSED / IMPLAUSIBLE_TIME: the reason code (a delivery_sdk.trust.Refusal value)


def receipt_event(task_id: str, now: datetime, receipt: Receipt) -> Event:
    """The event a provider's receipt becomes."""
    did = receipt.dispatch_id
    pid = receipt.provider_event_id
    kind = receipt.kind
    if kind is _R_DELIVERED:
        return DispatchDelivered(
            task_id=task_id, at=now, dispatch_id=did, delivered_at=receipt.at, provider_event_id=pid
        )
    if kind is _R_FAILED:
        return DispatchFailed(
            task_id=task_id, at=now, dispatch_id=did, reason=receipt.reason or "failed", provider_event_id=pid
        )
    if kind is ReceiptKind.READ:
        return DispatchRead(task_id=task_id, at=now, dispatch_id=did, read_at=receipt.at, provider_event_id=pid)
    if kind is ReceiptKind.PRINTED:
        return Printed(task_id=task_id, at=now, dispatch_id=did, provider_event_id=pid)
    if kind is ReceiptKind.ENVELOPED:
        return Enveloped(task_id=task_id, at=now, dispatch_id=did, enveloped_at=receipt.at, provider_event_id=pid)
    if kind is ReceiptKind.MAILED:
        assert receipt.waybill is not None
        return Mailed(task_id=task_id, at=now, dispatch_id=did, waybill=receipt.waybill, provider_event_id=pid)
    if kind is ReceiptKind.CONSENTED:
        return ConsentRecorded(
            task_id=task_id, at=now, method=ConsentMethod.PHONE, given_at=receipt.at, via_dispatch=did
        )
    if kind is ReceiptKind.SIGNED:
        return PostSigned(
            task_id=task_id,
            at=now,
            dispatch_id=did,
            signed_at=receipt.at,
            # who signed, as the carrier said; the law decides whether that serves (law.postal_service)
            signer_role=receipt.signer_role or _SIGNER_UNKNOWN,
            provider_event_id=pid,
        )
    assert receipt.reason is not None
    return PostReturned(
        task_id=task_id,
        at=now,
        dispatch_id=did,
        returned_at=receipt.at,
        reason=ReturnReason(receipt.reason),
        provider_event_id=pid,
    )


_R_DELIVERED, _R_FAILED = ReceiptKind.DELIVERED, ReceiptKind.FAILED  # the usual receipts, read once
_SIGNER_UNKNOWN = SignerRole.UNKNOWN.value


_IO_FACTS = (
    DispatchSent,
    DispatchDelivered,
    DispatchRead,
    DispatchFailed,
    Printed,
    Enveloped,
    Mailed,
    PostSigned,
    PostReturned,
    ConsentRecorded,
)


def _is_news(record: DispatchRecord, event: Event) -> bool:
    """Whether a provider-reported fact tells the dispatch's record anything it does not know yet."""
    if isinstance(event, DispatchSent):
        # the provider's acceptance is evidence even when its delivery report overtook it
        return record.status is _QUEUED or (record.provider_ref is None and event.provider_ref is not None)
    if isinstance(event, DispatchDelivered):
        return record.delivered_at is None or event.delivered_at < record.delivered_at
    if isinstance(event, DispatchRead):
        return record.read_at is None
    if isinstance(event, DispatchFailed | ConsentRecorded):
        return not record.status.settled
    if isinstance(event, Printed):
        return record.status in (DispatchStatus.QUEUED, DispatchStatus.SENT)
    if isinstance(event, Enveloped):
        return record.enveloped_at is None
    if isinstance(event, Mailed):
        return record.waybill is None
    if isinstance(event, PostSigned):
        # a signature after the item came back is no service (the sender signing for the returned item)
        return record.status is not DispatchStatus.DELIVERED and record.status is not DispatchStatus.RETURNED
    if isinstance(event, PostReturned):
        return record.status not in (DispatchStatus.RETURNED, DispatchStatus.DELIVERED)
    return True


def event_is_news(task: Task, event: Event) -> bool:
    """Whether a provider-reported event still tells ``task`` something (after a conflict, an ingest may
    have recorded the same report meanwhile)."""
    dispatch_id = event.via_dispatch if isinstance(event, ConsentRecorded) else getattr(event, "dispatch_id", None)
    record = task.dispatch(dispatch_id) if dispatch_id is not None else None
    return record is None or _is_news(record, event)


def receipt_is_news(record: DispatchRecord, receipt: Receipt) -> bool:
    """Whether a receipt tells the task anything it does not know (status polls repeat old news)."""
    return _is_news(record, receipt_event(record.dispatch_id, record.queued_at, receipt))


def _contradicts(record: DispatchRecord, kind: ReceiptKind) -> bool:
    """Whether a report contradicts the settled outcome of its dispatch (recorded as late evidence only)."""
    status = record.status
    if kind is ReceiptKind.FAILED:
        return status is DispatchStatus.DELIVERED or status is DispatchStatus.READ
    if kind is ReceiptKind.RETURNED:
        return status is DispatchStatus.DELIVERED
    if kind is ReceiptKind.SIGNED:
        return status is DispatchStatus.RETURNED
    return False


def _out_of_order(record: DispatchRecord, receipt: Receipt) -> bool:
    if receipt.kind is ReceiptKind.READ:
        return record.delivered_at is None
    if receipt.kind in (ReceiptKind.MAILED, ReceiptKind.ENVELOPED):
        return record.status in (DispatchStatus.QUEUED, DispatchStatus.SENT)
    return False


# The longest the collector stays paused while a step waits on its providers (see _GCPause).
GC_PAUSE_WAIT = 0.05


class _GCPause:
    """Holds Python's cyclic garbage collector off while a step works, and for at most ``GC_PAUSE_WAIT``
    seconds of a step's I/O (a slow provider never keeps it off longer).

    A batch keeps hundreds of tasks' objects alive at once (folded tasks, events, writes). With the collector
    on, every 700 allocations start a collection that walks the young ones, survivors move up, and full
    collections walk the whole heap again: 10-15% of the engine's time, finding nothing (the engine makes no
    cycles). Paused, the young objects are examined once, when the pause ends. Reference counting frees
    everything else as usual. Re-entrant; leaves the collector as it found it (an application that turned
    it off keeps it off). Off unless ``EngineConfig(pause_gc=True)``: the collector is process-wide, so an
    embedding application decides; ``delivery-sdk worker`` (a process the SDK owns) turns it on. It saves
    about 2-3% of the engine's instructions per task in bench_engine (session 13's callgrind figures: 1.945
    against 2.000 M instructions per task), more on a heap the host keeps large.
    """

    __slots__ = ("_depth", "_resume", "on")

    def __init__(self, on: bool) -> None:
        self.on = on
        self._depth = 0
        self._resume = False

    def __enter__(self) -> None:
        if self.on:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()

    def time_up(self) -> None:
        """End the pause early (the step has waited ``GC_PAUSE_WAIT`` on its providers)."""
        if self._depth and self._resume:
            gc.enable()

    async def waiting(self, io: Coroutine[Any, Any, None]) -> None:
        """Await ``io`` (a step's provider calls) paused, for at most ``GC_PAUSE_WAIT`` seconds."""
        if not self.on:
            await io
            return
        with self:
            timer = asyncio.get_running_loop().call_later(GC_PAUSE_WAIT, self.time_up)
            try:
                await io
            finally:
                timer.cancel()


_new_write = _builder(TaskWrite)  # TaskWrite(...) without attrs' __init__ (it has no validator to run)


class _Limit:
    """At most ``n`` calls in flight (an asyncio.Semaphore whose uncontended acquire costs no coroutine: the
    engine takes a slot for every provider call)."""

    __slots__ = ("free", "waiting")

    def __init__(self, n: int) -> None:
        self.free = max(1, n)
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a free slot at once if there is one and nobody waits (no coroutine); else :meth:`wait`."""
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Take a slot once one is free (first come, first served)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            await future  # release() hands its slot over by resolving the future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as the wait was cancelled: pass it on
            elif future in self.waiting:
                self.waiting.remove(future)
            raise

    def release(self) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class _Work:
    """One task's progress through one engine step (a plain slotted class: one is made per task a step
    claims, and attrs' generated __init__ with its list factories cost several times this one)."""

    __slots__ = (
        "base_version",
        "bundle",
        "done",
        "due_at",
        "events",
        "file_after_commit",
        "io",
        "outbox",
        "outbox_done",
        "receipt_keys",
        "task",
        "timeline",
    )

    def __init__(self, task: Task, base_version: int) -> None:
        self.task = task
        self.base_version = base_version
        self.events: list[Event] = []
        self.io: list[tuple[Action, Dispatch | None]] = []
        self.done: list[Action] = []
        self.due_at: datetime | None = None
        self.outbox: list[OutboxEntry] = []
        self.outbox_done: list[str] = []
        self.receipt_keys: list[str] = []
        self.timeline: tuple[StoredEvent, ...] = ()
        self.bundle: dict[str, Any] | None = None
        self.file_after_commit = False

    def reset(self, *, keep_io: bool = False) -> None:
        """Start a new write on top of what was just committed."""
        self.base_version = self.task.version
        self.events, self.outbox, self.outbox_done, self.receipt_keys = [], [], [], []
        if not keep_io:
            self.io = []

    def write(self, *, release: bool) -> TaskWrite:
        return _new_write(
            task_id=self.task.task_id,
            expected_version=self.base_version,
            events=tuple(self.events),
            state=self.task.state._value_,  # .value is a Python-level property; _value_ is the member's slot
            due_at=None if self.task.state in TERMINAL else self.due_at,
            release=release,
            outbox=tuple(self.outbox),
            outbox_done=tuple(self.outbox_done),
            receipt_keys=tuple(self.receipt_keys),
        )


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
        self._limits: dict[str, _Limit] = {}
        self._wake = asyncio.Event()
        self._kinds: dict[ChannelKind, str] | None = None
        self._adapters: dict[ChannelKind, tuple[str, ...]] | None = None
        self._errors: dict[str, int] = {}
        # what keeps failing, for the worker's health: component ("channel sms", "print routing"...) ->
        # (failures in a row, the last error); a success of the component removes it
        self.failing: dict[str, tuple[int, str]] = {}
        self._conflicted: frozenset[str] = frozenset()
        self.signers: Sequence[Signer] = ()  # evidence checkpoint keys; none: no checkpoints are signed
        self.origin: str | None = None  # the evidence log's name in its checkpoints; None: the first key's name
        # the last checkpoint signed, kept outside the store (evidence/witness.py); None: not kept
        self.witness: Path | None = default_witness_path(store)
        self._unsigned_events = 0
        self._last_checkpoint: datetime | None = None
        self.steps = 0
        self.routed_today = RoutedToday()  # print jobs per centre today, from the store (capacity)
        # while a step (or a submit) computes, the cyclic GC is paused: see _GCPause
        self.computing = _GCPause(self.config.pause_gc)
        self._refusals: list[RefusedReceipt] = []  # refused receipts not yet handed to the store

    # -- channels ------------------------------------------------------------------------------------

    @property
    def channel_kinds(self) -> dict[ChannelKind, str]:
        """The adapter used for each channel kind: the first of that kind in the host's order (two adapters of
        one kind need an explicit ``DELIVERY_SDK_CHANNEL_ORDER``, see :mod:`delivery_sdk.plugins`)."""
        if self._kinds is None:
            kinds: dict[ChannelKind, str] = {}
            for adapter in self.host.channels:
                kinds.setdefault(adapter.kind, adapter.name)
            self._kinds = kinds
        return self._kinds

    @property
    def channel_adapters(self) -> dict[ChannelKind, tuple[str, ...]]:
        """Every adapter of each channel kind, in the host's order: the policy chooses among them
        (``PolicyConfig.adapters``, :mod:`delivery_sdk.adapters`)."""
        if self._adapters is None:
            adapters: dict[ChannelKind, tuple[str, ...]] = {k: (name,) for k, name in self.channel_kinds.items()}
            for adapter in self.host.channels:
                names = adapters.setdefault(adapter.kind, ())
                if adapter.name not in names:
                    adapters[adapter.kind] = (*names, adapter.name)
            self._adapters = adapters
        return self._adapters

    def _adapter(self, dispatch: Dispatch) -> ChannelAdapter:
        if dispatch.kind is _PRINT:
            if dispatch.waybill is not None and ChannelKind.POST in self.channel_kinds:
                return self.host.channels.get(self.channel_kinds[ChannelKind.POST])
            return self.host.print_centres.adapter(dispatch.centre_id or dispatch.channel)
        return self.host.channels.get(dispatch.channel)

    def _limit(self, adapter: str) -> _Limit:
        """The adapter's one limit, whatever the operation (send, status): ``channel_concurrency`` calls."""
        limit = self._limits.get(adapter)
        if limit is None:
            limit = self._limits[adapter] = _Limit(self.config.channel_concurrency)
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
            recipient_phone=_postal_phone(task) if record.kind in _POSTAL_KINDS else None,
        )

    def _apply(self, work: _Work, event: Event) -> bool:
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
        if not self._apply(work, event):
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
                    progressed = self._apply(work, action.event) or progressed
                else:
                    rest.append(action)
            network: list[Action] = []
            for action in rest:
                if done and action in done:
                    continue
                if isinstance(action, _INLINE) or (
                    isinstance(action, File)
                    and (not any(isinstance(e, Served) for e in work.events) or not self.host.has_filing_sinks())
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
                    self._apply(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
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
            self._prefetch_timelines(works)
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
            self._maybe_checkpoint(now)
            if self._refusals:
                try:
                    self._keep_refusals()
                except Exception:
                    log.exception("could not record refused receipts; they are in the log")
        return len(claimed)

    # -- evidence checkpoints ------------------------------------------------------------------------

    def _maybe_checkpoint(self, now: datetime) -> None:
        due = self._last_checkpoint is None or now - self._last_checkpoint >= self.config.checkpoint_every
        if self._unsigned_events >= self.config.checkpoint_every_events or (due and self._unsigned_events):
            self.checkpoint(now)

    @property
    def log_origin(self) -> str:
        """The evidence log's name in its checkpoints: :attr:`origin` if set, else the first signer key's name."""
        if self.origin:
            return self.origin
        return self.signers[0].name if self.signers else "delivery-sdk"

    def _latest_checkpoint(self) -> str | None:
        evidence = getattr(self.store, "evidence", None)
        found = evidence.checkpoints() if evidence is not None else []
        return str(found[-1][1]) if found else None

    def checkpoint(self, now: datetime | None = None) -> str | None:
        """Sign a checkpoint of the evidence log now (if there is anything new and a key is configured) and
        hand it to the evidence sinks; returns the signed note.

        The new checkpoint must extend the last one signed: the one in :attr:`witness` (a file outside the
        store, replaced after each checkpoint) and the store's latest. If it does not (the database was rolled
        back or rewritten, the log renamed), :class:`~delivery_sdk.EvidenceForkError` is raised, nothing is
        signed, and the error stops the engine's step: see ``docs/evidence.md``."""
        sign = getattr(self.store, "checkpoint", None)
        if sign is None or not self.signers:
            return None
        now = now or self.clock.now()
        witness = self.witness
        # never sign a fork: the log must extend the last checkpoint signed (kept outside the store)
        kept = read_witness(witness) if witness is not None else None
        try:
            note: str | None = sign(
                self.log_origin,
                self.signers,
                now,
                extends=None if kept is None else kept[1],
                extends_from=None if kept is None else str(witness),
            )
        except EvidenceForkError as exc:
            log.critical("evidence checkpoints stopped: %s", exc)
            raise
        if witness is not None and (note is not None or kept is None):
            latest = note if note is not None else self._latest_checkpoint()
            if latest is not None:
                write_witness(witness, latest)
        self._last_checkpoint = now
        self._unsigned_events = 0
        if note is not None and self.host.has_evidence_sinks():
            self._to_sinks(EvidenceBatch(events=(), checkpoint=note))
        return note

    def _to_sinks(self, batch: EvidenceBatch) -> None:
        try:
            receipts = self.host.record_evidence(batch)
        except Exception:
            log.exception("an evidence sink failed; the events are committed and stay in the store")
            return
        keep = getattr(self.store, "record_anchors", None)
        if receipts and keep is not None:
            keep(receipts)

    def _prefetch_timelines(self, works: Sequence[_Work]) -> None:
        """Load the timelines of served tasks in one query (filing needs them), when anyone files."""
        if not self.host.has_filing_sinks():
            return
        served = [w for w in works if w.task.state is TaskState.SERVED]
        if served:
            timelines = self.store.load_events([w.task.task_id for w in served])
            for work in served:
                work.timeline = tuple(timelines.get(work.task.task_id, ()))
            bundle_of = getattr(self.store, "proof_bundle", None)
            if bundle_of is not None and self.signers:
                # sign what is committed (the service included), so the proof of service carries its proofs
                self.checkpoint(self.clock.now())
                for work in served:
                    work.bundle = bundle_of(work.task.task_id)

    def _file_served(self, works: list[_Work], now: datetime) -> None:
        """File the tasks whose service was committed in this step, then commit the filings."""
        ready = [w for w in works if w.task.state is TaskState.SERVED and w.task.task_id not in self._conflicted]
        if not ready:
            return
        for work in ready:
            work.reset()
            work.file_after_commit = False
        self._prefetch_timelines(ready)
        for work in ready:
            self._advance(work, now, allow_io=False)
        self._commit_results(ready, now)

    def _after_commit(self, stored: Sequence[StoredEvent], works: Sequence[_Work], conflicts: frozenset[str]) -> None:
        self._conflicted = conflicts
        for work in works:
            if work.task.task_id in conflicts:
                self._cache.pop(work.task.task_id, None)
            else:
                self._unsigned_events += len(work.events)
                self._remember(work.task)
        self._publish(stored)

    def _listening(self) -> bool:
        return self.host.has_evidence_sinks() or self.host.has_observers()

    def _publish(self, stored: Sequence[StoredEvent]) -> None:
        if not stored:
            return
        if self.host.has_evidence_sinks():
            self._to_sinks(EvidenceBatch(events=tuple(stored)))
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
        for _attempt in range(5):
            result = self.store.commit([w.write(release=not w.io) for w in pending], returning=self._listening())
            self._after_commit(result.stored, pending, result.conflicts)
            if not result.conflicts:
                return works
            retry = [w for w in pending if w.task.task_id in result.conflicts]
            fresh = self.load([(w.task.task_id, self.store.task_row(w.task.task_id).version) for w in retry])
            for work in retry:
                # Only what providers told us is re-applied, and only if still news (the ingest that moved
                # the task may have recorded the same report); the policy decides the rest afresh.
                facts = [e for e in work.events if isinstance(e, _IO_FACTS)]
                done, keys = work.outbox_done, work.receipt_keys  # reset() clears them; the results still stand
                work.task = fresh[work.task.task_id]
                work.reset()
                # the inline actions' events (routing, address search, filing) were dropped with the write:
                # they run again; only the I/O stays done (its results are the facts re-applied)
                work.done = [a for a in work.done if not isinstance(a, (*_INLINE, File))]
                work.outbox_done = [d for d in done if work.task.dispatch(d) is not None]
                work.receipt_keys = keys
                for event in facts:
                    if event_is_news(work.task, event):
                        self._apply(work, event)
                self._advance(work, now, allow_io=False)
            pending = retry
        self._conflicted = frozenset()
        raise RuntimeError("could not commit engine results after 5 conflicts")  # pragma: no cover

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
        error = _describe_failure(exc)
        component = component or _COMPONENTS.get(type(action).__name__, type(action).__name__.lower())
        self.failing[component] = (self.failing.get(component, (0, ""))[0] + 1, error)
        log.warning("task %s: %s failed (%d): %s", task_id, type(action).__name__, count, error)
        if count >= self.config.max_io_errors:
            self._errors.pop(task_id, None)
            reason = f"{type(action).__name__.lower()} failed {count} times ({type(exc).__name__})"
            self._apply(work, NeedsAttention(task_id=task_id, at=now, reason=reason))

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
            self._route(work, now)
        elif isinstance(action, SearchAddress):
            self._search_address(work, now)
        elif isinstance(action, File):
            self._file(work, now)

    async def _perform_all(self, works: Sequence[_Work], now: datetime) -> None:
        """Run the I/O of a step's works: per channel, up to ``channel_concurrency`` works at once.

        Each channel's works form a queue that that many coroutines work through, one work after another,
        instead of one asyncio task per work (a task costs some 8 us, more than a fast provider's answer).
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
                    await self._poll(work, dispatch, now)
                else:
                    await self._send_or_reconcile(work, dispatch, now, reconcile=isinstance(action, Reconcile))
            except Exception as exc:
                self._failed(work, action, now, exc, f"channel {dispatch.channel}")
                if work.task.state is TaskState.NEEDS_ATTENTION:
                    return
            else:
                if self.failing:
                    self.failing.pop(f"channel {dispatch.channel}", None)
                if self._errors:
                    self._errors.pop(work.task.task_id, None)

    def _receipts(
        self, work: _Work, adapter: ChannelAdapter, dispatch: Dispatch, receipts: Sequence[Receipt], now: datetime
    ) -> None:
        """Apply what ``adapter`` answered to a send or status call about ``dispatch``: only receipts about that
        dispatch, of the kinds that adapter reports (delivery_sdk.trust); the rest are refused and counted."""
        if not receipts:
            return
        channel = adapter.name
        dispatch_id = dispatch.dispatch_id
        kind = dispatch.kind
        if kind is _PRINT:  # the engine asked the carrier (a waybill to track) or the print centre
            allowed = allowed_reports(kind, Reporter.CARRIER if adapter.kind is _POST else Reporter.CENTRE)
        else:
            allowed = allowed_reports(kind, Reporter.CHANNEL)
        skew = self.config.clock_skew
        for receipt in receipts:
            if receipt.dispatch_id != dispatch_id or receipt.kind not in allowed:
                self._refused_answer(channel, dispatch, receipt, now)
                continue
            record = work.task.dispatch(dispatch_id)
            if record is None:
                continue
            event = receipt_event(work.task.task_id, now, receipt)
            if not _is_news(record, event):
                continue
            wrong_time = implausible_time(receipt.kind, receipt.at, record.queued_at, now, skew)
            if wrong_time is not None:
                reason = self._implausible(channel, dispatch_id, wrong_time, now)
                if work.task.attention_reason != reason and work.task.state not in _SETTLED:
                    self._apply(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
                continue
            key = f"{channel}:{receipt.provider_event_id}" if receipt.provider_event_id else None
            if key is not None and key in work.receipt_keys:
                continue
            if self._apply(work, event) and key is not None:
                work.receipt_keys.append(key)

    async def _send_or_reconcile(self, work: _Work, dispatch: Dispatch, now: datetime, *, reconcile: bool) -> None:
        try:
            adapter = self._adapter(dispatch)
        except UnknownChannel as exc:
            self._apply(
                work,
                DispatchFailed(task_id=work.task.task_id, at=now, dispatch_id=dispatch.dispatch_id, reason=str(exc)),
            )
            work.outbox_done.append(dispatch.dispatch_id)
            return
        name = adapter.name
        if reconcile:
            report: StatusReport = await self._call(name, "status", lambda: adapter.status(dispatch))
            if report.found:
                self._apply(
                    work,
                    DispatchSent(
                        task_id=work.task.task_id,
                        at=now,
                        dispatch_id=dispatch.dispatch_id,
                        provider_ref=report.provider_ref,
                    ),
                )
                self._receipts(work, adapter, dispatch, report.receipts, now)
                work.outbox_done.append(dispatch.dispatch_id)
                return
        if dispatch.kind is _PRINT and dispatch.waybill is None:
            ordered = await self._order_waybill(work, dispatch, now)
            if ordered is None:
                work.outbox_done.append(dispatch.dispatch_id)
                return
            dispatch = ordered
        try:
            result: SendResult = await self._call(name, "send", lambda: adapter.send(dispatch))
        except TransientChannelError as exc:
            failover = transient_failover(work.task, dispatch, self.policy, self.channel_adapters, exc, now)
            if failover is None:
                raise  # in doubt: stays queued; reconciled through status next time
            self._apply(work, failover)  # retries exhausted, and the policy names a next adapter
            work.outbox_done.append(dispatch.dispatch_id)
            return
        except ChannelError as exc:
            self._apply(
                work,
                DispatchFailed(
                    task_id=work.task.task_id,
                    at=now,
                    dispatch_id=dispatch.dispatch_id,
                    reason=str(exc) or type(exc).__name__,
                ),
            )
            if isinstance(exc, UnsendableDispatch):
                # no other provider would do better (the documents are wrong, say): a person, not a failover
                reason = f"dispatch {dispatch.dispatch_id} cannot be sent: {exc}"
                self._apply(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
            work.outbox_done.append(dispatch.dispatch_id)
            return
        if result.accepted:
            self._apply(
                work,
                DispatchSent(
                    task_id=work.task.task_id,
                    at=now,
                    dispatch_id=dispatch.dispatch_id,
                    provider_ref=result.provider_ref,
                ),
            )
            self._receipts(work, adapter, dispatch, result.receipts, now)
        else:
            self._apply(
                work,
                DispatchFailed(
                    task_id=work.task.task_id,
                    at=now,
                    dispatch_id=dispatch.dispatch_id,
                    reason=result.reason or "refused by the provider",
                ),
            )
        work.outbox_done.append(dispatch.dispatch_id)

    async def _order_waybill(self, work: _Work, dispatch: Dispatch, now: datetime) -> Dispatch | None:
        """The print job with the carrier's electronic waybill, ordered before the job goes to the centre, so
        the centre prints the label (no hand-written slips) and reports the item mailed under that number.

        Only for a carrier adapter (kind POST) that says ``orders_waybills = True``; its ``send`` is the order,
        idempotent on the dispatch id, so a job sent again after a crash gets the same waybill. Otherwise the
        job goes as it is and the centre supplies the waybill when it reports the item mailed. A carrier that
        refuses the order (an address or phone it cannot take) fails the job and asks a person.
        """
        carrier_name = self.channel_kinds.get(ChannelKind.POST)
        if carrier_name is None:
            return dispatch
        carrier = self.host.channels.get(carrier_name)
        if not getattr(carrier, "orders_waybills", False):
            return dispatch
        try:
            result: SendResult = await self._call(carrier_name, "send", lambda: carrier.send(dispatch))
        except TransientChannelError:
            raise  # the job stays queued; reconciled (and the waybill ordered again, idempotently) next time
        except ChannelError as exc:
            result = SendResult(accepted=False, reason=str(exc) or type(exc).__name__)
        if result.accepted and result.provider_ref:
            return attrs.evolve(dispatch, waybill=result.provider_ref)
        task_id = work.task.task_id
        reason = f"the carrier refused the waybill order: {result.reason or 'no waybill number'}"
        if dispatch.recipient_phone is None:
            reason += f"; the party has no mobile number on the task: {_ADD_PHONE}"
        failed = DispatchFailed(
            task_id=task_id, at=now, dispatch_id=dispatch.dispatch_id, reason=reason, failed_by=FAILED_BY_CARRIER
        )
        self._apply(work, failed)
        self._apply(work, NeedsAttention(task_id=task_id, at=now, reason=reason))
        return None

    async def _poll(self, work: _Work, dispatch: Dispatch, now: datetime) -> None:
        adapter = self._adapter(dispatch)
        report: StatusReport = await self._call(adapter.name, "status", lambda: adapter.status(dispatch))
        self._receipts(work, adapter, dispatch, report.receipts, now)

    def carrier_requirements(self) -> tuple[str | None, frozenset[str]]:
        """The carrier the postal leg uses (its adapter name, or None) and what its waybills need
        (``requires``: :data:`~delivery_sdk.channels.WAYBILL_REQUIREMENTS`)."""
        name = self.channel_kinds.get(_POST)
        if name is None:
            return None, frozenset()
        return name, carrier_requires(self.host.channels.get(name))

    def _waybill_unmet(self, work: _Work, now: datetime) -> str | None:
        """Why the carrier could not take this task's waybill (None: it could). A phone the carrier needs and
        the task lacks is asked of assisted person search first; found, it becomes the task's contact."""
        carrier, requires = self.carrier_requirements()
        if RECEIVER_PHONE not in requires or _postal_phone(work.task) is not None:
            return None
        self._found_contacts(work, now, self.host.address_candidates(work.task.request.party, ()))
        if _postal_phone(work.task) is not None:
            return None
        return (
            f"carrier {carrier!r} needs the receiver's phone on the waybill (receiver_phone) and the party has no "
            f"mobile number, nor did assisted person search find one: {_ADD_PHONE}"
        )

    def _found_contacts(self, work: _Work, now: datetime, candidates: Sequence[AddressCandidate]) -> None:
        """Record the best new contact of each electronic kind assisted person search offered (a registry's
        phone, say) as ``contact.updated`` with its source: the waybill and the policy use it from then on."""
        best: dict[ContactKind, AddressCandidate] = {}
        for candidate in sorted(candidates, key=_candidate_order):
            kind = candidate.contact.kind
            if kind is ContactKind.POSTAL or kind in best:
                continue
            if any(c.value == candidate.contact.value for c in work.task.contacts_of(kind)):
                continue
            best[kind] = candidate
        for kind, candidate in best.items():
            source = candidate.source
            event = ContactUpdated(
                task_id=work.task.task_id,
                at=now,
                contact=attrs.evolve(candidate.contact, source=source),
                source=source,
                confidence=candidate.confidence,
                basis=f"SPC Opinion 2017 No. 19 (assisted person search: {kind.value} from {source})",
            )
            self._apply(work, event)

    def _route(self, work: _Work, now: datetime) -> None:
        unmet = self._waybill_unmet(work, now)
        if unmet is not None:
            self._apply(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=unmet))
            return
        task = work.task
        assert task.postal_address is not None
        address = task.postal_address
        refused = tuple(
            d.centre_id
            for d in task.dispatches
            if d.kind is ChannelKind.PRINT
            and d.status is DispatchStatus.FAILED
            and d.centre_id
            and d.failed_by is None  # the carrier's refusal of a waybill is not the centre's
            and d.contact.value == address.value
        )
        note = ""
        if address.division_code is None:
            # The built-in resolver supplies the division code a router needs; an address it is unsure about
            # goes to a person with the candidates, never to a guessed centre.
            resolution = resolve_address(address.value, home_province=self.policy.home_province)
            if not resolution.ok or resolution.status not in _ROUTABLE:
                # Below ROUTING_THRESHOLD (delivery_sdk.address.resolver) a person chooses: never a guessed centre.
                names = "; ".join(f"{c.code} {c.path}" for c in resolution.candidates[:5]) or "none"
                sure = f", confidence {resolution.confidence:.2f}" if resolution.code is not None else ""
                reason = f"address is {resolution.status.value}{sure}: choose its division (candidates: {names})"
                self._apply(work, NeedsAttention(task_id=task.task_id, at=now, reason=reason))
                return
            address = attrs.evolve(address, division_code=resolution.code)
            note = (
                f"; division {resolution.code} {resolution.status.value} by the resolver"
                f" (confidence {resolution.confidence:.2f}"
                + "".join(f", {f.value}" for f in sorted(resolution.flags, key=lambda f: f.value))
                + ")"
            )
        job = PrintJob(
            task_id=task.task_id,
            case=task.request.case,
            address=address,
            documents=task.request.documents,
            round=task.postal_rounds + 1,
            exclude=refused,
        )
        decision = self.host.route_print_job(job, routed_today=self.routed_today.counts(self.store, now))
        if decision is None or decision.centre_id not in self.host.print_centres:
            why = f"no print centre serves division {address.division_code}{note}"
            self._apply(work, NeedsAttention(task_id=task.task_id, at=now, reason=why))
            return
        self.routed_today.note(task.task_id, now, decision.centre_id)
        self._apply(
            work,
            PrintRouted(task_id=task.task_id, at=now, centre_id=decision.centre_id, reason=decision.reason + note),
        )

    def _search_address(self, work: _Work, now: datetime) -> None:
        task = work.task
        tried = set(task.tried_addresses)
        known = [Contact(kind=ContactKind.POSTAL, value=v, source="tried") for v in task.tried_addresses]
        candidates = self.host.address_candidates(task.request.party, known)
        self._found_contacts(work, now, candidates)  # a registry may know a phone too
        task = work.task
        fresh = [c for c in candidates if c.contact.kind is ContactKind.POSTAL and c.contact.value not in tried]
        if not fresh:
            self._apply(
                work,
                AddressSearchFailed(
                    task_id=task.task_id,
                    at=now,
                    reason=f"no untried address among {len(candidates)} candidate(s)",
                    basis=BASIS_NO_ADDRESS_LEFT,
                ),
            )
            return
        ranked = sorted(fresh, key=_candidate_order)
        best = ranked[0]
        rivals = [
            c
            for c in ranked[1:]
            if _candidate_order(c) == _candidate_order(best) and c.contact.value != best.contact.value
        ]
        if rivals:
            # Equally good, different addresses: a person chooses (set_address); the reason names the sources,
            # never the addresses themselves.
            sources = ", ".join(sorted({c.source for c in (best, *rivals)}))
            reason = f"assisted person search found {len(rivals) + 1} equally ranked addresses ({sources}); choose one"
            self._apply(work, NeedsAttention(task_id=task.task_id, at=now, reason=reason))
            return
        self._apply(
            work,
            AddressUpdated(
                task_id=task.task_id,
                at=now,
                contact=best.contact,
                source=best.source,
                confidence=best.confidence,
                basis=_address_basis(best),
            ),
        )

    def _file(self, work: _Work, now: datetime) -> None:
        task = work.task
        assert task.served_method is not None
        assert task.served_at is not None
        assert task.served_basis is not None
        record_id = f"{task.task_id}:proof"
        if not self.host.has_filing_sinks():  # no case file to file into: the record would go nowhere
            self._apply(work, Filed(task_id=task.task_id, at=now, record_id=record_id, filed_by=()))
            return
        timeline = work.timeline
        record = ServiceRecord(
            record_id=record_id,
            task_id=task.task_id,
            case=task.request.case,
            party_id=task.request.party.party_id,
            documents=task.request.documents,
            method=task.served_method,
            basis=task.served_basis,
            effective_at=task.served_at,
            dispatch_id=task.served_dispatch_id,
            timeline=timeline,
            proof_bundle=work.bundle,
        )
        refs = self.host.file_service_record(record)
        self._apply(work, Filed(task_id=task.task_id, at=now, record_id=record.record_id, filed_by=tuple(refs)))

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
        store (``refused_receipts``, shown by supervision); nothing of the receipt's content is kept.
        """
        if not isinstance(receipt, Receipt):
            raise MalformedReceipt(f"ingest takes a Receipt, got {type(receipt).__name__}")
        task_id = self.store.dispatch_task(receipt.dispatch_id)
        if task_id is None:
            return IngestResult(
                outcome=IngestOutcome.UNKNOWN_DISPATCH, message=f"no dispatch {receipt.dispatch_id!r} in this store"
            )
        for _attempt in range(5):
            task = self.load_task(task_id)
            record = task.dispatch(receipt.dispatch_id)
            if record is None:  # intent committed by a crashed engine before its event? cannot happen
                return IngestResult(outcome=IngestOutcome.UNKNOWN_DISPATCH, task_id=task_id)
            refused = provenance_refusal(record, receipt.kind, channel, self.channel_kinds.get(_POST))
            if refused is not None:
                why, message = refused
                self._refuse(why, channel, record.dispatch_id, message, self.clock.now())
                self._keep_refusals()
                return IngestResult(outcome=IngestOutcome.REFUSED, task_id=task_id, message=message, refusal=why.value)
            source = channel or record.channel
            key = f"{source}:{receipt.provider_event_id}" if receipt.provider_event_id else None
            if key is not None and self.store.receipt_seen(key):
                return IngestResult(
                    outcome=IngestOutcome.DUPLICATE,
                    task_id=task_id,
                    message=f"provider event {receipt.provider_event_id!r} was recorded before",
                )
            now = self.clock.now()
            wrong_time = implausible_time(receipt.kind, receipt.at, record.queued_at, now, self.config.clock_skew)
            if wrong_time is not None:
                implausible = self._ingest_implausible(task, source, record.dispatch_id, wrong_time, now)
                if implausible is None:  # the task moved on meanwhile: look again
                    continue
                return implausible
            contradicts = _contradicts(record, receipt.kind)
            if not receipt_is_news(record, receipt) and not (contradicts and key is not None):
                return IngestResult(
                    outcome=IngestOutcome.DUPLICATE,
                    task_id=task_id,
                    message=f"dispatch {receipt.dispatch_id} already shows this",
                )
            event = receipt_event(task_id, now, receipt)
            before = task.state
            try:
                after = apply(task, event)
            except IllegalTransition as exc:
                return IngestResult(
                    outcome=IngestOutcome.LATE, task_id=task_id, event_type=event.TYPE, message=str(exc)
                )
            late = before in _SETTLED or contradicts or (receipt.kind is ReceiptKind.FAILED and record.status.settled)
            out_of_order = _out_of_order(record, receipt)
            write = TaskWrite(
                task_id=task_id,
                expected_version=task.version,
                events=(event,),
                state=after.state.value,
                due_at=None if after.terminal else now,
                release=False,
                receipt_keys=(key,) if key else (),
            )
            result = self.store.commit([write])
            if task_id in result.conflicts:
                self._cache.pop(task_id, None)
                continue
            self._remember(after)
            self._publish(result.stored)
            self.wake()
            outcome = (
                IngestOutcome.LATE if late else (IngestOutcome.OUT_OF_ORDER if out_of_order else IngestOutcome.ACCEPTED)
            )
            return IngestResult(outcome=outcome, task_id=task_id, event_type=event.TYPE)
        raise RuntimeError(f"task {task_id} kept changing while a receipt was ingested")  # pragma: no cover

    def _ingest_implausible(
        self, task: Task, source: str, dispatch_id: str, wrong_time: str, now: datetime
    ) -> IngestResult | None:
        """A receipt whose time cannot be a fact of its dispatch: nothing of it is applied; the task goes to a
        person (once per reason) unless its service is decided already. None: the task moved on (retry)."""
        reason = _implausible_reason(source, dispatch_id, wrong_time)
        result = IngestResult(
            outcome=IngestOutcome.IMPLAUSIBLE_TIME,
            task_id=task.task_id,
            message=reason,
            refusal=Refusal.IMPLAUSIBLE_TIME.value,
        )
        if task.state not in _SETTLED and task.attention_reason != reason:
            event = NeedsAttention(task_id=task.task_id, at=now, reason=reason)
            after = apply(task, event)
            write = TaskWrite(
                task_id=task.task_id,
                expected_version=task.version,
                events=(event,),
                state=after.state.value,
                due_at=now,
                release=False,
            )
            committed = self.store.commit([write])
            if task.task_id in committed.conflicts:
                self._cache.pop(task.task_id, None)
                return None
            self._remember(after)
            self._publish(committed.stored)
            self.wake()
            result = attrs.evolve(result, event_type=event.TYPE)
        self._refuse(Refusal.IMPLAUSIBLE_TIME, source, dispatch_id, wrong_time, now)
        self._keep_refusals()
        return result

    # -- refused receipts ----------------------------------------------------------------------------

    def _refuse(self, why: Refusal, source: str | None, dispatch_id: str, detail: str, now: datetime) -> None:
        """Count a refused receipt (handed to the store by :meth:`_keep_refusals`). Only the adapter's name,
        the reason and the dispatch id named are kept: never the report's content."""
        log.warning("refused a receipt on dispatch %s from %r (%s): %s", dispatch_id, source, why.value, detail)
        self._refusals.append(
            RefusedReceipt(
                at=now,
                source=(source or "")[:100],
                reason=why.value,
                dispatch_id=dispatch_id[:200],
                detail=detail[:300],
            )
        )

    def _refused_answer(self, channel: str, dispatch: Dispatch, receipt: Receipt, now: datetime) -> None:
        """An adapter's answer about ``dispatch`` carried a receipt it may not give: about another dispatch,
        or of a kind that adapter does not report."""
        if receipt.dispatch_id != dispatch.dispatch_id:
            detail = f"asked about dispatch {dispatch.dispatch_id}, {channel!r} answered about another dispatch"
            self._refuse(Refusal.OTHER_DISPATCH, channel, dispatch.dispatch_id, detail, now)
        else:
            detail = f"{channel!r} does not report {receipt.kind.value!r} on a {dispatch.kind.value} dispatch"
            self._refuse(Refusal.NOT_ITS_REPORT, channel, dispatch.dispatch_id, detail, now)

    def _implausible(self, source: str, dispatch_id: str, wrong_time: str, now: datetime) -> str:
        """Count a receipt (from a send or a poll) whose time was not believed; returns the attention reason."""
        self._refuse(Refusal.IMPLAUSIBLE_TIME, source, dispatch_id, wrong_time, now)
        return _implausible_reason(source, dispatch_id, wrong_time)

    def _keep_refusals(self) -> None:
        """Hand the refused receipts counted so far to the store (stores without ``record_refusals`` keep
        none: the log has them)."""
        refusals, self._refusals = self._refusals, []
        keep = getattr(self.store, "record_refusals", None)
        if keep is not None:
            keep(refusals)

    def record(self, task_id: str, event: Event) -> StoredEvent:
        """Record an event decided by a person (cancel, resume, a new address); the lifecycle must allow it."""
        for _attempt in range(5):
            task = self.load_task(task_id)
            after = apply(task, event)
            write = TaskWrite(
                task_id=task_id,
                expected_version=task.version,
                events=(event,),
                state=after.state.value,
                due_at=None if after.terminal else self.clock.now(),
                release=False,
            )
            result = self.store.commit([write])
            if task_id in result.conflicts:
                self._cache.pop(task_id, None)
                continue
            self._remember(after)
            self._publish(result.stored)
            self.wake()
            return result.stored[0]
        raise RuntimeError(f"task {task_id} kept changing")  # pragma: no cover

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
            if self._unsigned_events:
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
            if self._unsigned_events:
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


_POSTAL_KINDS = frozenset({ChannelKind.PRINT, ChannelKind.POST})
_POST = ChannelKind.POST
# A task whose service is decided (or that was cancelled): a late report is evidence only, never a person's work.
_SETTLED = frozenset({TaskState.SERVED, TaskState.FILED, TaskState.CANCELLED})
_QUEUED = DispatchStatus.QUEUED  # read once: a member read through its enum class costs an attribute hook
_PRINT = ChannelKind.PRINT
_INLINE = (Route, SearchAddress)  # decision hooks the policy's actions run inline
BASIS_NO_ADDRESS_LEFT = "SPC Opinion 2017 No. 19 (assisted person search: no untried address in any source)"


def _implausible_reason(source: str, dispatch_id: str, wrong_time: str) -> str:
    """Why a task waits for a person after a report with an unbelievable time (the same report, the same
    reason: a retried report asks nobody twice)."""
    return (
        f"a report on dispatch {dispatch_id} from {source!r} was not applied: it claims {wrong_time}; "
        "check the provider's clock or the report, then resume the task"
    )


def _postal_phone(task: Task) -> str | None:
    """The mobile number the carrier needs on the waybill: the party's own (one added to the task first),
    else its agent's."""
    phone = task.first_contact(ContactKind.MOBILE)
    return None if phone is None else phone.value


_ADD_PHONE = "add one with client.set_contact(task_id, Contact(kind=ContactKind.MOBILE, value=...)) to go on by post"


def _address_basis(candidate: AddressCandidate) -> str:
    """Why an address found by assisted person search may be served at (SPC 2017 Opinion order)."""
    if candidate.contact.confirmed:
        return ADDRESS_BASIS["confirmation_form"]
    ranked = ADDRESS_BASIS.get(candidate.source)
    if ranked is not None:
        return ranked
    return f"SPC Opinion 2017 No. 19 (assisted person search: address from {candidate.source})"


def _candidate_order(candidate: AddressCandidate) -> tuple[int, float, float]:
    """SPC 2017 Opinion order by source, then confidence, then the most recently observed."""
    rank = 0 if candidate.contact.confirmed else SOURCE_RANK.get(candidate.source, 9)
    seen = candidate.observed_at.timestamp() if candidate.observed_at is not None else 0.0
    return (rank, -candidate.confidence, -seen)
