"""The durable queue of staff phone calls: a SQLite file (next to the store by default) or PostgreSQL.

One row per call task, keyed by the dispatch id (the engine's idempotency key: enqueuing it twice is a
no-op). A row is ``open`` until a final outcome makes it ``done``, or until the engine no longer needs it
(the dispatch timed out, the task was served another way or cancelled) and it is ``closed``. Every call
attempt is also kept in ``staff_call_attempts``.

Claiming takes the open call that has been due longest and is not under someone's lease, and leases it
to one member of staff (a random token proves the lease): nobody else can claim it until the lease
expires or it is released. On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED``, so any number of
staff (and processes) claim concurrently without ever getting the same call; on SQLite the claim is one
``BEGIN IMMEDIATE`` transaction.

The queue holds the full phone number and the party's name: staff need them to make the call. Guard the
file (or database) as you guard the store; nothing here logs them.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from delivery_sdk import DeliveryError, Dispatch, Receipt, ReceiptKind, ValidationError
from delivery_sdk.model import mask

__all__ = [
    "CallClosed",
    "CallOutcome",
    "CallQueue",
    "CallState",
    "CallSummary",
    "ClaimedCall",
    "LeaseLost",
    "Recorded",
    "RetrySchedule",
    "StaffCallError",
    "UnknownCall",
    "queue_path_beside",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class StaffCallError(DeliveryError):
    """A staff call could not be claimed, released or recorded as asked."""


class UnknownCall(StaffCallError, LookupError):
    """No call with that id in the queue."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no staff call {call_id!r} in the queue; `delivery-sdk calls list` shows the open ones")


class LeaseLost(StaffCallError):
    """The caller does not hold the call's lease (it expired and someone else claimed it, or it was released)."""


class CallClosed(StaffCallError):
    """The call is no longer open: its outcome was recorded, or the engine no longer needs it."""


class CallOutcome(enum.Enum):
    """What came of one call attempt."""

    REACHED_CONSENTED = "reached_consented"  # reached the party, who consented to electronic service
    REFUSED = "refused"  # reached the party, who refused electronic service
    WRONG_NUMBER = "wrong_number"  # the number does not reach the party
    NO_ANSWER = "no_answer"  # nobody answered (busy, switched off...): tried again on the schedule


class CallState(enum.Enum):
    """Where a call is: open (to be made), done (an outcome recorded) or closed (no longer needed)."""

    OPEN = "open"
    DONE = "done"
    CLOSED = "closed"


REASONS = {
    CallOutcome.REFUSED: "staff call: the party refused electronic service",
    CallOutcome.WRONG_NUMBER: "staff call: wrong number (it does not reach the party)",
}


def _timedeltas(value: Any) -> tuple[timedelta, ...]:
    items = tuple(value)
    if not items or not all(isinstance(d, timedelta) and d > timedelta(0) for d in items):
        raise ValidationError("a retry schedule needs at least one positive timedelta")
    return items


@attrs.frozen(kw_only=True)
class RetrySchedule:
    """When to call again after no answer: ``delays[i]`` after the (i+1)-th unanswered attempt (the last
    delay repeats), and at most ``max_attempts`` attempts; after the last one the call fails.

    Keep the whole schedule within ``PolicyConfig.response_window[ChannelKind.PHONE]`` (48 h by default):
    the engine gives up on the call when that window ends (the default, 2 h then 1 day over 3 attempts,
    needs 26 h).
    """

    delays: tuple[timedelta, ...] = attrs.field(default=(timedelta(hours=2), timedelta(days=1)), converter=_timedeltas)
    max_attempts: int = 3

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValidationError("max_attempts must be a positive integer")

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` unanswered attempts."""
        return self.delays[min(max(attempts, 1), len(self.delays)) - 1]

    @property
    def span(self) -> timedelta:
        """From the first attempt to the last, if nobody ever answers."""
        return sum((self.delay_after(n) for n in range(1, self.max_attempts)), timedelta(0))


def _masked(value: str) -> str:
    return repr(mask(value))


@attrs.frozen(kw_only=True)
class CallSummary:
    """A call as listed for everyone: the number and the name masked."""

    call_id: str
    task_id: str
    channel: str
    phone: str  # masked
    recipient: str  # masked
    court: str
    case_number: str
    state: CallState
    attempts: int
    max_attempts: int
    due_at: datetime
    leased_by: str | None
    lease_until: datetime | None
    outcome: CallOutcome | None

    def due(self, now: datetime) -> bool:
        """Whether the call is open, due at ``now`` and not leased to a member of staff."""
        return self.state is CallState.OPEN and self.due_at <= now and not self.leased(now)

    def leased(self, now: datetime) -> bool:
        """Whether a member of staff holds the call at ``now``."""
        return self.lease_until is not None and self.lease_until > now


@attrs.frozen(kw_only=True)
class ClaimedCall:
    """A call leased to one member of staff, with what they need to make it (``repr`` masks the number)."""

    call_id: str
    task_id: str
    channel: str
    phone: str = attrs.field(repr=_masked)
    recipient: str = attrs.field(repr=_masked)
    court: str
    case_number: str
    documents: tuple[str, ...]
    attempts: int  # made before this one
    max_attempts: int
    token: str = attrs.field(repr=False)
    leased_by: str
    lease_until: datetime


@attrs.frozen(kw_only=True)
class Recorded:
    """What recording an outcome did: the call's new state, and the receipt for the engine (if final)."""

    call_id: str
    outcome: CallOutcome
    state: CallState
    attempts: int
    next_due_at: datetime | None
    receipt: Receipt | None
    consent_scope: tuple[str, ...] = ()


def queue_path_beside(store_path: str | os.PathLike[str]) -> Path:
    """The default queue file for a SQLite store: ``service.sqlite3`` -> ``service.staffcalls.sqlite3``."""
    path = Path(store_path)
    if str(path) == ":memory:":
        raise ValidationError("an in-memory store has no folder: give the staff-call queue a path of its own")
    return path.with_name(f"{path.stem}.staffcalls{path.suffix or '.sqlite3'}")


def _us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValidationError("times must be timezone-aware")
    return (moment - _EPOCH) // _US


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _US


def _event_id(call_id: str, what: str) -> str:
    text = f"{call_id}:{what}"
    return text if len(text) <= 200 else f"{hashlib.sha256(call_id.encode()).hexdigest()}:{what}"


_COLUMNS = (
    "dispatch_id",
    "task_id",
    "channel",
    "phone",
    "recipient",
    "court",
    "case_number",
    "documents",
    "state",
    "attempts",
    "max_attempts",
    "due_at",
    "lease_token",
    "leased_by",
    "lease_until",
    "outcome",
    "reason",
    "consent_scope",
    "outcome_at",
    "created_at",
    "updated_at",
)
_SELECT = ", ".join(_COLUMNS)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS staff_calls (
        dispatch_id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        phone TEXT NOT NULL,
        recipient TEXT NOT NULL,
        court TEXT NOT NULL,
        case_number TEXT NOT NULL,
        documents TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        due_at BIGINT NOT NULL,
        lease_token TEXT,
        leased_by TEXT,
        lease_until BIGINT,
        outcome TEXT,
        reason TEXT,
        consent_scope TEXT,
        outcome_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS staff_calls_due ON staff_calls (state, due_at)",
    "CREATE INDEX IF NOT EXISTS staff_calls_task ON staff_calls (task_id)",
    """CREATE TABLE IF NOT EXISTS staff_call_attempts (
        dispatch_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        at BIGINT NOT NULL,
        staff TEXT NOT NULL,
        note TEXT,
        PRIMARY KEY (dispatch_id, attempt)
    )""",
)


class _Backend:
    lock_clause = ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Backend):
    def __init__(self, path: str) -> None:
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise StaffCallError(f"cannot open the staff-call queue {path!r}: {exc}") from exc
        for statement in _SCHEMA:
            self.db.execute(statement)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, tuple(params)).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class _Postgres(_Backend):
    lock_clause = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is installed with the postgres extra
            raise StaffCallError(
                "a PostgreSQL staff-call queue needs psycopg: pip install 'delivery-sdk-staffcalls[postgres]'"
            ) from exc
        try:
            self.db = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            # the DSN may hold a password: name the failure, not the DSN
            raise StaffCallError(f"cannot connect to the staff-call queue database ({type(exc).__name__})") from exc
        with self.transaction():
            # concurrent first starts would race on CREATE TABLE IF NOT EXISTS: serialise them
            self.execute("SELECT pg_advisory_xact_lock(hashtext('delivery_sdk_staffcalls'))")
            for statement in _SCHEMA:
                self.execute(statement)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.db.execute(sql.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def tx() -> Iterator[None]:
            with self.db.transaction():
                yield

        return tx()

    def close(self) -> None:
        self.db.close()


def _is_dsn(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class CallQueue:
    """The staff-call queue at ``target``: a SQLite file path or a ``postgresql://`` DSN.

    Thread-safe (one connection behind a lock); open one per process. Times are the caller's (the client's
    clock), stored as microseconds since the epoch.
    """

    def __init__(self, target: str | os.PathLike[str], *, schedule: RetrySchedule | None = None) -> None:
        text = os.fspath(target)
        self.target = text
        self.schedule = schedule or RetrySchedule()
        self._lock = threading.RLock()
        if _is_dsn(text):
            self._db: _Backend = _Postgres(text)
        else:
            if text != ":memory:":
                Path(text).parent.mkdir(parents=True, exist_ok=True)
            self._db = _SQLite(text)

    @classmethod
    def beside(cls, store_path: str | os.PathLike[str], *, schedule: RetrySchedule | None = None) -> CallQueue:
        """The queue in a file next to a SQLite store (see :func:`queue_path_beside`)."""
        return cls(queue_path_beside(store_path), schedule=schedule)

    @property
    def description(self) -> str:
        """Where the queue is, fit for messages (a DSN's password left out)."""
        if _is_dsn(self.target):
            return "PostgreSQL " + self.target.split("@")[-1]
        return self.target

    def close(self) -> None:
        """Close the queue's SQLite file."""
        with self._lock:
            self._db.close()

    # -- rows ----------------------------------------------------------------------------------------

    def _row(self, call_id: str, *, lock: bool = False) -> dict[str, Any] | None:
        suffix = " FOR UPDATE" if lock and isinstance(self._db, _Postgres) else ""
        rows = self._db.execute(f"SELECT {_SELECT} FROM staff_calls WHERE dispatch_id = ?{suffix}", (call_id,))
        return dict(zip(_COLUMNS, rows[0], strict=True)) if rows else None

    def _summary(self, row: dict[str, Any]) -> CallSummary:
        lease_until = _dt(row["lease_until"])
        return CallSummary(
            call_id=row["dispatch_id"],
            task_id=row["task_id"],
            channel=row["channel"],
            phone=mask(row["phone"]),
            recipient=mask(row["recipient"]),
            court=row["court"],
            case_number=row["case_number"],
            state=CallState(row["state"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            due_at=_EPOCH + row["due_at"] * _US,
            leased_by=row["leased_by"] if row["lease_token"] else None,
            lease_until=lease_until if row["lease_token"] else None,
            outcome=CallOutcome(row["outcome"]) if row["outcome"] else None,
        )

    @staticmethod
    def _receipt(row: dict[str, Any]) -> Receipt | None:
        """The receipt a finished call gives the engine (none for an open or closed one)."""
        if row["state"] != CallState.DONE.value:
            return None
        at = _EPOCH + row["outcome_at"] * _US
        if row["outcome"] == CallOutcome.REACHED_CONSENTED.value:
            return Receipt(
                dispatch_id=row["dispatch_id"],
                kind=ReceiptKind.CONSENTED,
                at=at,
                provider_event_id=_event_id(row["dispatch_id"], "consented"),
            )
        return Receipt(
            dispatch_id=row["dispatch_id"],
            kind=ReceiptKind.FAILED,
            at=at,
            reason=row["reason"],
            provider_event_id=_event_id(row["dispatch_id"], "failed"),
        )

    # -- the channel's side --------------------------------------------------------------------------

    def enqueue(self, dispatch: Dispatch, now: datetime) -> bool:
        """Add the call task for ``dispatch`` (due at once); False if it was there already (idempotent)."""
        stamp = _us(now)
        documents = json.dumps([d.title for d in dispatch.documents], ensure_ascii=False)
        with self._lock, self._db.transaction():
            if self._row(dispatch.dispatch_id) is not None:
                return False
            self._db.execute(
                "INSERT INTO staff_calls (dispatch_id, task_id, channel, phone, recipient, court, case_number, "
                "documents, state, attempts, max_attempts, due_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                (
                    dispatch.dispatch_id,
                    dispatch.task_id,
                    dispatch.channel,
                    dispatch.contact.value,
                    dispatch.recipient_name,
                    dispatch.case.court,
                    dispatch.case.case_number,
                    documents,
                    CallState.OPEN.value,
                    self.schedule.max_attempts,
                    stamp,
                    stamp,
                    stamp,
                ),
            )
            return True

    def lookup(self, call_id: str) -> tuple[bool, Receipt | None]:
        """Whether the queue has the call, and the receipt of its final outcome if there is one."""
        with self._lock:
            row = self._row(call_id)
        if row is None:
            return False, None
        return True, self._receipt(row)

    def receipt(self, call_id: str) -> Receipt | None:
        """The receipt of a call's outcome, or None while it has none."""
        return self.lookup(call_id)[1]

    # -- the staff's side ----------------------------------------------------------------------------

    def get(self, call_id: str) -> CallSummary:
        """A call as staff see it (raises ``UnknownCall``)."""
        with self._lock:
            row = self._row(call_id)
        if row is None:
            raise UnknownCall(call_id)
        return self._summary(row)

    def calls(
        self, now: datetime, *, include_claimed: bool = False, include_finished: bool = False
    ) -> list[CallSummary]:
        """Calls in the order they will be offered: open ones not under a lease (those due now first, then
        the ones scheduled later); with ``include_claimed`` also those leased now, with ``include_finished``
        also the done and closed ones."""
        with self._lock:
            if include_finished:
                rows = self._db.execute(f"SELECT {_SELECT} FROM staff_calls ORDER BY due_at, created_at")
            else:
                rows = self._db.execute(
                    f"SELECT {_SELECT} FROM staff_calls WHERE state = ? ORDER BY due_at, created_at",
                    (CallState.OPEN.value,),
                )
        out = [self._summary(dict(zip(_COLUMNS, r, strict=True))) for r in rows]
        if not include_claimed:
            out = [c for c in out if not (c.state is CallState.OPEN and c.leased(now))]
        return out

    def claim(
        self, staff: str, now: datetime, *, lease: timedelta = timedelta(minutes=15), exclude: Sequence[str] = ()
    ) -> ClaimedCall | None:
        """Lease the call that has been due longest to ``staff``; None when no call is due."""
        if not isinstance(staff, str) or not staff.strip():
            raise ValidationError("say who claims the call (staff name or id)")
        if lease <= timedelta(0):
            raise ValidationError("a lease must be positive")
        stamp = _us(now)
        token = secrets.token_hex(16)  # hex: never starts with "-", which a CLI would read as an option
        skip = ""
        params: list[Any] = [CallState.OPEN.value, stamp, stamp]
        if exclude:
            skip = f" AND dispatch_id NOT IN ({', '.join('?' for _ in exclude)})"
            params.extend(exclude)
        pick = (
            "SELECT dispatch_id FROM staff_calls WHERE state = ? AND due_at <= ? "
            f"AND (lease_until IS NULL OR lease_until <= ?){skip} "
            f"ORDER BY due_at, created_at, dispatch_id LIMIT 1{self._db.lock_clause}"
        )
        with self._lock, self._db.transaction():
            rows = self._db.execute(
                f"UPDATE staff_calls SET lease_token = ?, leased_by = ?, lease_until = ?, updated_at = ? "
                f"WHERE dispatch_id = ({pick}) RETURNING {_SELECT}",
                (token, staff, _us(now + lease), stamp, *params),
            )
        if not rows:
            return None
        row = dict(zip(_COLUMNS, rows[0], strict=True))
        return ClaimedCall(
            call_id=row["dispatch_id"],
            task_id=row["task_id"],
            channel=row["channel"],
            phone=row["phone"],
            recipient=row["recipient"],
            court=row["court"],
            case_number=row["case_number"],
            documents=tuple(json.loads(row["documents"])),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            token=token,
            leased_by=staff,
            lease_until=now + lease,
        )

    def _held(self, call_id: str, token: str) -> dict[str, Any]:
        row = self._row(call_id, lock=True)
        if row is None:
            raise UnknownCall(call_id)
        if row["state"] != CallState.OPEN.value:
            raise CallClosed(f"staff call {call_id} is {row['state']}: nothing more to record")
        if not token or row["lease_token"] is None or not secrets.compare_digest(row["lease_token"], token):
            raise LeaseLost(
                f"you do not hold the lease on staff call {call_id} (it expired and was claimed again, or was "
                "released); claim a call again"
            )
        return row

    def release(self, call_id: str, token: str, now: datetime) -> None:
        """Give a claimed call back to the queue at once (its attempt count unchanged)."""
        with self._lock, self._db.transaction():
            self._held(call_id, token)
            self._db.execute(
                "UPDATE staff_calls SET lease_token = NULL, leased_by = NULL, lease_until = NULL, updated_at = ? "
                "WHERE dispatch_id = ?",
                (_us(now), call_id),
            )

    def record(
        self,
        call_id: str,
        token: str,
        outcome: CallOutcome,
        now: datetime,
        *,
        staff: str,
        scope: Sequence[str] = (),
        note: str | None = None,
    ) -> Recorded:
        """Record one attempt's outcome under the caller's lease; see :class:`CallOutcome`."""
        if not isinstance(outcome, CallOutcome):
            raise ValidationError(f"outcome must be one of {[o.value for o in CallOutcome]}")
        if scope and outcome is not CallOutcome.REACHED_CONSENTED:
            raise ValidationError("a consent scope goes with reached_consented only")
        stamp = _us(now)
        with self._lock, self._db.transaction():
            row = self._held(call_id, token)
            attempts = row["attempts"] + 1
            self._db.execute(
                "INSERT INTO staff_call_attempts (dispatch_id, attempt, outcome, at, staff, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (call_id, attempts, outcome.value, stamp, staff, note),
            )
            final = outcome is not CallOutcome.NO_ANSWER or attempts >= row["max_attempts"]
            if final:
                if outcome is CallOutcome.NO_ANSWER:
                    reason: str | None = f"staff call: no answer after {attempts} attempts"
                else:
                    reason = REASONS.get(outcome)
                self._db.execute(
                    "UPDATE staff_calls SET state = ?, attempts = ?, outcome = ?, reason = ?, consent_scope = ?, "
                    "outcome_at = ?, lease_token = NULL, leased_by = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE dispatch_id = ?",
                    (
                        CallState.DONE.value,
                        attempts,
                        outcome.value,
                        reason,
                        json.dumps(list(scope)) if scope else None,
                        stamp,
                        stamp,
                        call_id,
                    ),
                )
                next_due = None
            else:
                next_due = now + self.schedule.delay_after(attempts)
                self._db.execute(
                    "UPDATE staff_calls SET attempts = ?, due_at = ?, lease_token = NULL, leased_by = NULL, "
                    "lease_until = NULL, updated_at = ? WHERE dispatch_id = ?",
                    (attempts, _us(next_due), stamp, call_id),
                )
            after = self._row(call_id)
        assert after is not None
        return Recorded(
            call_id=call_id,
            outcome=outcome,
            state=CallState(after["state"]),
            attempts=attempts,
            next_due_at=next_due,
            receipt=self._receipt(after),
            consent_scope=tuple(scope),
        )

    def attempts(self, call_id: str) -> list[tuple[int, CallOutcome, datetime, str]]:
        """The attempts made on a call: number, outcome, time, staff."""
        with self._lock:
            rows = self._db.execute(
                "SELECT attempt, outcome, at, staff FROM staff_call_attempts WHERE dispatch_id = ? ORDER BY attempt",
                (call_id,),
            )
        return [(r[0], CallOutcome(r[1]), _EPOCH + r[2] * _US, r[3]) for r in rows]

    def close_call(self, call_id: str, reason: str, now: datetime) -> bool:
        """Close an open call the engine no longer needs; False if it was not open."""
        with self._lock, self._db.transaction():
            row = self._row(call_id, lock=True)
            if row is None or row["state"] != CallState.OPEN.value:
                return False
            self._db.execute(
                "UPDATE staff_calls SET state = ?, reason = ?, lease_token = NULL, leased_by = NULL, "
                "lease_until = NULL, updated_at = ? WHERE dispatch_id = ?",
                (CallState.CLOSED.value, reason, _us(now), call_id),
            )
            return True

    def open_call_ids(self, task_id: str) -> list[str]:
        """The ids of a task's open calls."""
        with self._lock:
            rows = self._db.execute(
                "SELECT dispatch_id FROM staff_calls WHERE task_id = ? AND state = ?", (task_id, CallState.OPEN.value)
            )
        return [r[0] for r in rows]
