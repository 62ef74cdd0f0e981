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
from typing import Protocol, runtime_checkable

import attrs

from ..events import Event, StoredEvent, TaskCreated

__all__ = [
    "CommitResult",
    "CreateResult",
    "NewTask",
    "OutboxEntry",
    "RefusalCount",
    "RefusedReceipt",
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

    def close(self) -> None: ...
