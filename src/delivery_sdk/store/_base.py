"""The store contract: what the engine and the client need from persistence, and nothing SQLite-only.

The event log is the truth: a task's state is the fold of its events. The ``tasks`` rows keep only what
scheduling and queries need (state, version, due time, case). Everything of one commit (events, task rows,
outbox entries, receipt keys) is written in one transaction, and a write whose task moved on since it was
read (another writer, an ingest) is reported as a conflict and written not at all.

Leases: :meth:`TaskStore.claim_due` hands out due tasks and leases them until ``lease_until``; a commit
with ``release=True`` ends the lease. An implementation for many workers (PostgreSQL) leases with
``FOR UPDATE SKIP LOCKED``; the embedded SQLite store serves one engine process and keeps leases in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ..events import Event, StoredEvent, TaskCreated

if TYPE_CHECKING:
    from ..access import AccessRecord
    from ..evidence.keys import Signer
    from ..evidence.verify import Checkpoint
    from ..records import AnchorReceipt

__all__ = [
    "CommitResult",
    "CreateResult",
    "NewTask",
    "OutboxEntry",
    "RefusalCount",
    "RefusedReceipt",
    "StoreCapabilities",
    "TaskRow",
    "TaskStore",
    "TaskWrite",
]


@attrs.frozen(kw_only=True)
class NewTask:
    task_id: str
    client_key: str | None
    fingerprint: str  # sha256 of the request's wire form: same key + same fingerprint = same request
    case_key: str
    created: TaskCreated
    due_at: datetime
    # the created event's stored form when the caller already serialised it, as UTF-8: exactly
    # serialization.event_body(created).encode() (keys sorted: the evidence leaf hashes these bytes)
    body: bytes | None = None
    court: str = ""  # the task's court code (delivery_sdk.access.court_code of the case number)


@attrs.frozen(kw_only=True)
class CreateResult:
    task_ids: tuple[str, ...]  # one per NewTask, in order (the existing id for a repeated client key)
    created: tuple[bool, ...]  # False where the task already existed
    stored: tuple[StoredEvent, ...]


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """The intent to send one dispatch; committed before the provider is called."""

    dispatch_id: str
    task_id: str
    channel: str


@attrs.frozen(kw_only=True, slots=False)  # dict-based: the engine builds three per task through its dict
class TaskWrite:
    """New events for one task, written only if the task is still at ``expected_version``."""

    task_id: str
    expected_version: int
    events: tuple[Event, ...]
    state: str
    due_at: datetime | None
    release: bool = True
    outbox: tuple[OutboxEntry, ...] = ()
    outbox_done: tuple[str, ...] = ()
    # recorded once each: a key already there is not recorded again (two ingests of one receipt on one task
    # cannot both commit: the second one's expected_version has moved on, and it finds the key on its retry)
    receipt_keys: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class RefusedReceipt:
    """A receipt the engine refused (see :mod:`delivery_sdk.trust`): what an operator needs to see an attack or
    a misconfiguration, and nothing of the report itself (no body, no personal data).

    Stores that keep refusals have ``record_refusals(refusals)`` and ``refusals()``: counts per UTC day,
    source and reason (a bounded table, however many arrive), with the last one's dispatch id and detail.
    """

    at: datetime
    source: str  # the adapter the receipt came through ("" for a trusted in-process caller)
    reason: str  # a delivery_sdk.trust.Refusal value
    dispatch_id: str  # the dispatch the receipt named
    detail: str  # why, in words (adapter names, kinds, times; no content of the report)


@attrs.frozen(kw_only=True)
class RefusalCount:
    """Refused receipts of one UTC day, one source and one reason."""

    day: str  # YYYY-MM-DD (UTC)
    source: str
    reason: str
    count: int
    first_at: datetime
    last_at: datetime
    dispatch_id: str  # the last one's
    detail: str  # the last one's


def refusal_rows(refusals: Sequence[RefusedReceipt]) -> list[tuple[str, str, str, str, str, str]]:
    """(day, source, reason, at, dispatch_id, detail) of each refusal, ``at`` in UTC ISO 8601."""
    rows = []
    for r in refusals:
        at = r.at.astimezone(UTC)
        rows.append((at.date().isoformat(), r.source, r.reason, at.isoformat(), r.dispatch_id, r.detail))
    return rows


@attrs.frozen(kw_only=True)
class CommitResult:
    stored: tuple[StoredEvent, ...]
    conflicts: frozenset[str]  # task ids whose write was skipped because their version moved on


@attrs.frozen(kw_only=True)
class TaskRow:
    task_id: str
    case_key: str
    client_key: str | None
    state: str
    version: int
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    court: str = ""  # the task's court code ('' for a task migrated from a case number without one)


class CheckpointLog(Protocol):
    """The signed checkpoints an evidence log keeps."""

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every signed checkpoint, ``(size, note)``, oldest first."""
        ...


class EvidenceStore(Protocol):
    """A store that keeps a tamper-evident evidence log (``docs/evidence.md``): it signs checkpoints of it,
    keeps notaries' receipts and builds a task's proof bundle."""

    @property
    def evidence(self) -> CheckpointLog | None:
        """The evidence log (None: this store was opened without one)."""
        ...

    def checkpoint(
        self,
        origin: str,
        signers: Sequence[Signer],
        now: datetime,
        *,
        extends: Checkpoint | None = None,
        extends_from: str | None = None,
    ) -> str | None:
        """Sign and keep a checkpoint of the log; None when there is nothing new to sign (or no log).
        Raises :class:`~delivery_sdk.EvidenceForkError` (nothing signed) when the log forked."""
        ...

    def record_anchors(self, receipts: Sequence[AnchorReceipt]) -> None:
        """Keep notaries' receipts for anchored checkpoints."""
        ...

    def proof_bundle(self, task_id: str) -> dict[str, Any] | None:
        """The task's events with inclusion proofs against a signed checkpoint, or None."""
        ...


class RefusalStore(Protocol):
    """A store that counts the receipts the engine refused (see :class:`RefusedReceipt`)."""

    def record_refusals(self, refusals: Sequence[RefusedReceipt]) -> None:
        """Count refused receipts (per UTC day, source and reason)."""
        ...


class AccessLog(Protocol):
    """A store that keeps the access log: who was shown which task's personal data (``docs/access.md``)."""

    def record_access(self, records: Sequence[AccessRecord]) -> None:
        """Append access records to the hash-chained access log, atomically."""
        ...

    def access_records(self, *, task_id: str | None = None, staff_id: str | None = None) -> list[AccessRecord]:
        """The access records of one task or of one staff member (all of them without either), oldest first."""
        ...


class EngineLock(Protocol):
    """A store that one engine at a time may work (an SQLite file)."""

    def acquire_engine_lock(self) -> None:
        """Take the store's engine lock for this process, or raise :class:`~delivery_sdk.StoreError`."""
        ...


@attrs.frozen(kw_only=True)
class StoreCapabilities:
    """The optional features of a store, declared by it (:meth:`TaskStore.capabilities`): each is the object
    that provides the feature (usually the store itself), or None where the store has none. The engine and the
    client use a feature only through these, never by probing the store for methods."""

    evidence: EvidenceStore | None = None  # signed checkpoints, notaries' receipts, proof bundles
    refusals: RefusalStore | None = None  # counts of refused receipts (supervision shows them)
    engine_lock: EngineLock | None = None  # one engine at a time (SQLite); None: many workers may share it
    access: AccessLog | None = None  # who was shown personal data (a named actor is refused without it)


@runtime_checkable
class TaskStore(Protocol):
    """Persistence for tasks, their events, the outbox and the receipts already seen."""

    def create_tasks(self, tasks: Sequence[NewTask]) -> CreateResult:
        """Insert new tasks with their ``task.created`` events, atomically.

        A client key seen before with the same fingerprint returns the existing task (``created=False``);
        with a different fingerprint raises :class:`~delivery_sdk.IdempotencyConflict` and writes nothing.
        """
        ...

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[tuple[str, int]]:
        """Lease up to ``limit`` unleased tasks due at ``now``; returns ``(task_id, version)`` pairs."""
        ...

    def release(self, task_ids: Sequence[str]) -> None:
        """End the leases of tasks the engine will not write after all."""
        ...

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        """Write every non-conflicting ``TaskWrite`` in one transaction.

        With ``returning=False`` the result's ``stored`` is empty (nobody listens: skip building it).
        """
        ...

    def load_events(self, task_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Every event of each task, in order (a task with no events is absent from the result)."""
        ...

    def task_row(self, task_id: str) -> TaskRow:
        """The scheduling row of a task; raises :class:`~delivery_sdk.UnknownTask`."""
        ...

    def tasks_of_case(self, case_key: str) -> list[TaskRow]: ...

    def dispatch_task(self, dispatch_id: str) -> str | None:
        """The task a dispatch belongs to, or None if no such dispatch was ever queued."""
        ...

    def receipt_seen(self, key: str) -> bool: ...

    def pending_outbox(self) -> list[OutboxEntry]:
        """Dispatches whose intent is committed but whose send result is not (in doubt after a crash)."""
        ...

    def next_due_at(self, now: datetime | None = None) -> datetime | None:
        """The earliest moment a task becomes claimable: its due time, or for a due task that another owner
        holds a lease on (at ``now``, default the wall clock), the end of that lease; None when no task waits
        for time. An idle worker sleeps until then, so it never spins on another worker's leased tasks."""
        ...

    def count_by_state(self) -> dict[str, int]: ...

    def latest_event_time(self) -> datetime | None: ...

    def events_after(self, seq: int, limit: int, *, types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Committed events with ``seq`` greater than the given one, in order (for sinks and statistics).

        With ``types``, only events of those types (``PrintRouted.TYPE``...): the store filters before it
        decodes, so a reader that wants one kind of event does not pay for all the others.
        """
        ...

    def capabilities(self) -> StoreCapabilities:
        """The optional features this store has (:class:`StoreCapabilities`; a store without any returns
        ``StoreCapabilities()``)."""
        ...

    def close(self) -> None: ...
