"""The supervision query API: read a SQLite store (read-only) and answer the centre's questions.

Every statistic is one SQL statement over the indexes of schema version 2 (``events_supervision``,
``events_dispatch``, ``tasks_created``), reading the virtual columns ``sv_key``, ``sv_ref``
and ``sv_time`` that the migration derives from an event's JSON body: no event body is parsed for a
statistic, only for a task's timeline. Open work (the overdue list) is read per open task, which stays small
however large the store grows.
"""

from __future__ import annotations

import bisect
import itertools
import sqlite3
import statistics as pystats
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .._exceptions import StoreError, UnknownTask
from ..access import LOCAL_ACTOR, Actor, Permission
from ..locale import catalogue, centre_name, label, normalise_lang
from ..model import ChannelKind
from ..serialization import event_from_dict, loads
from ..store.sqlite import DISPATCH_REPORT_TYPES
from .meaning import actor_of, describe

__all__ = [
    "CYCLE_BUCKETS_HOURS",
    "CentreLoad",
    "ChannelRow",
    "CostRates",
    "CourtRow",
    "Distribution",
    "OverdueItem",
    "RefusedReceipts",
    "Scope",
    "ServiceLevels",
    "Statistics",
    "Supervisor",
    "TaskRow",
    "TimelineEntry",
]

T = TypeVar("T")

ELECTRONIC_KINDS = ("eservice", "sms", "wechat", "email", "phone")  # the built-ins; any kind: _electronic()


def _electronic(kind: str) -> bool:
    """Whether the stored kind value names an electronic kind, by its declared nature (a plugin's kind too;
    one no installed plugin declares is not counted)."""
    try:
        return ChannelKind.stored(kind).electronic
    except ValueError:
        return False


def _not_electronic_values() -> tuple[str, ...]:
    """The values of the declared kinds that are not electronic (print, post): every other kind is, a removed
    plugin's too (lowercase letters, digits and _ only: safe in SQL)."""
    return tuple(k.value for k in ChannelKind if not k.electronic)


_DELIVERED = ("dispatch.delivered", "dispatch.read", "post.signed")
# receipts that move a dispatch on (acceptance, "dispatch.sent", is not counted: it says nothing yet)
_RECEIPTS = DISPATCH_REPORT_TYPES
_SETTLED_E = frozenset({"dispatch.delivered", "dispatch.read", "dispatch.failed", "dispatch.timed_out"})
_PRINT_DONE = frozenset({"print.printed", "post.mailed", "post.signed", "post.returned", "dispatch.failed"})
# upper edges of the cycle-time histogram, in hours (the last bucket is open-ended)
CYCLE_BUCKETS_HOURS: tuple[float, ...] = (1, 6, 24, 48, 96, 168, 336, 720)


# the predicate of the partial index events_supervision, word for word as in the migration
_SV_TYPES = (
    "dispatch.queued",
    "print.routed",
    "service.served",
    "service.filed",
    "service.fell_back_to_post",
    "publication.started",
)


def _sv(alias: str = "") -> str:
    """``type IN (...)`` of the partial index ``events_supervision``, which a query must state to use it."""
    return f"{alias}type IN {_in(_SV_TYPES)}"


def _in(values: Sequence[str]) -> str:
    return "(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


@attrs.frozen(kw_only=True)
class ServiceLevels:
    """When open work counts as overdue."""

    eservice_unconfirmed_hours: float = 48.0  # an electronic dispatch with no delivery, read or failure report
    print_not_printed_hours: float = 24.0  # a print job the centre has not printed
    needs_attention: bool = True  # every task waiting for a person


@attrs.frozen(kw_only=True)
class CostRates:
    """Unit costs in yuan. The default baseline serves every task by post at 20 yuan (DOMAIN.md section 1)."""

    postal_yuan: float = 20.0  # one postal service (print, envelope, EMS)
    electronic_yuan: float = 0.0  # one electronic attempt (SMS fee...)
    publication_yuan: float = 0.0  # one public notice


@attrs.frozen(kw_only=True)
class Scope:
    """Which tasks a statistic covers: a court and a range of creation times (``created_to`` exclusive)."""

    court: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    @property
    def everything(self) -> bool:
        """Whether the scope covers every task (no court, no time range)."""
        return self.court is None and self.created_from is None and self.created_to is None


@attrs.frozen(kw_only=True)
class TaskRow:
    """One task as the supervision lists show it (court, case, state, service, print centre, channels)."""

    task_id: str
    court: str
    case_number: str
    state: str
    created_at: datetime
    updated_at: datetime
    served_method: str | None
    served_at: datetime | None
    centre_id: str | None
    channels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys and UTC times with their offset."""
        return {
            "task_id": self.task_id,
            "court": self.court,
            "case_number": self.case_number,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "served_method": self.served_method,
            "served_at": None if self.served_at is None else self.served_at.isoformat(),
            "centre_id": self.centre_id,
            "channels": list(self.channels),
        }


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One event of a task's timeline: its time, type, actor and legal meaning (in the supervisor's language)."""

    task_seq: int
    at: datetime
    type: str
    actor: str  # court / engine / provider / staff
    meaning: str  # the legal meaning, personal data masked

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys and the UTC time with its offset."""
        return {
            "task_seq": self.task_seq,
            "at": self.at.isoformat(),
            "type": self.type,
            "actor": self.actor,
            "meaning": self.meaning,
        }


@attrs.frozen(kw_only=True)
class OverdueItem:
    """Open work past its service level: which rule, since when, how long it has waited."""

    task_id: str
    court: str
    case_number: str
    rule: str  # eservice_unconfirmed / print_not_printed / needs_attention
    since: datetime
    hours: float  # how long it has waited at ``as_of``
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys and the UTC time with its offset."""
        return {
            "task_id": self.task_id,
            "court": self.court,
            "case_number": self.case_number,
            "rule": self.rule,
            "since": self.since.isoformat(),
            "hours": round(self.hours, 2),
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class Distribution:
    """A distribution of durations in hours, with a histogram on :data:`CYCLE_BUCKETS_HOURS`."""

    count: int
    mean_hours: float | None
    median_hours: float | None
    p90_hours: float | None
    max_hours: float | None
    histogram: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, hours: Sequence[float]) -> Distribution:
        """The distribution of ``hours``."""
        counts = [0] * (len(CYCLE_BUCKETS_HOURS) + 1)
        for h in hours:
            counts[bisect.bisect_right(CYCLE_BUCKETS_HOURS, h)] += 1
        labels = _bucket_labels()
        hist = tuple(zip(labels, counts, strict=True))
        if not hours:
            return cls(count=0, mean_hours=None, median_hours=None, p90_hours=None, max_hours=None, histogram=hist)
        ordered = sorted(hours)
        return cls(
            count=len(ordered),
            mean_hours=round(pystats.fmean(ordered), 4),
            median_hours=round(pystats.median(ordered), 4),
            p90_hours=round(_percentile(ordered, 0.9), 4),
            max_hours=round(ordered[-1], 4),
            histogram=hist,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys."""
        return {
            "count": self.count,
            "mean_hours": self.mean_hours,
            "median_hours": self.median_hours,
            "p90_hours": self.p90_hours,
            "max_hours": self.max_hours,
            "histogram": [{"bucket": label, "count": n} for label, n in self.histogram],
        }


def _hours_label(h: float) -> str:
    return f"{h / 24:g}d" if h >= 24 else f"{h:g}h"


def _bucket_labels() -> list[str]:
    edges = CYCLE_BUCKETS_HOURS
    labels = [f"<{_hours_label(edges[0])}"]
    labels += [f"{_hours_label(a)}-{_hours_label(b)}" for a, b in itertools.pairwise(edges)]
    labels.append(f">={_hours_label(edges[-1])}")
    return labels


def _percentile(ordered: list[float], q: float) -> float:
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@attrs.frozen(kw_only=True)
class ChannelRow:
    """One channel's dispatches, answers and deliveries (a print centre is a channel of kind ``print``)."""

    kind: str
    channel: str
    dispatches: int  # queued (and handed to it: print jobs the carrier refused never were)
    attempts: int  # got any answer from the provider
    delivered: int  # delivered, read or signed for
    carrier_refused: int = 0  # print jobs that never reached the centre: the carrier refused their waybill

    @property
    def success_rate(self) -> float:
        """Delivered over attempts (0 without attempts)."""
        return self.delivered / self.attempts if self.attempts else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys."""
        return {
            "kind": self.kind,
            "channel": self.channel,
            "dispatches": self.dispatches,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "success_rate": round(self.success_rate, 6),
            "carrier_refused": self.carrier_refused,
        }


@attrs.frozen(kw_only=True)
class CentreLoad:
    """One print centre's jobs and how far they got."""

    centre_id: str
    jobs: int  # print jobs sent there
    printed: int
    mailed: int
    signed: int
    returned: int
    open: int  # not yet printed
    carrier_refused: int = 0  # jobs whose waybill the carrier refused: they never reached the centre

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class RefusedReceipts:
    """Receipts the engine refused from one source for one reason (delivery_sdk.trust): wrong adapter, a report
    that adapter cannot make, an answer about another dispatch, an implausible time. Many from one source are
    an attack with that provider's credentials, or a misconfigured channel."""

    source: str  # the adapter the receipts came through ("" for a trusted in-process caller)
    reason: str  # a delivery_sdk.trust.Refusal value
    count: int
    first_at: datetime
    last_at: datetime
    dispatch_id: str  # the dispatch the last one named
    detail: str  # why the last one was refused

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys and UTC times with their offset."""
        return {
            "source": self.source,
            "reason": self.reason,
            "count": self.count,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "dispatch_id": self.dispatch_id,
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class CourtRow:
    """One court's figures (the centre serves every court of the province): its tasks, how many are served and
    how many of those electronically, the median time from creation to service, open and overdue work."""

    court: str
    tasks: int
    served: int
    electronic: int  # served electronically
    open: int  # neither served, filed nor cancelled
    median_hours: float | None  # created to served, over its served tasks
    overdue: int  # overdue items (one task may have two) at the statistics' as_of

    @property
    def electronic_share(self) -> float:
        """Served electronically over served (0 when nothing is served)."""
        return self.electronic / self.served if self.served else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys."""
        return {
            "court": self.court,
            "tasks": self.tasks,
            "served": self.served,
            "electronic": self.electronic,
            "electronic_share": round(self.electronic_share, 6),
            "open": self.open,
            "median_hours_created_to_served": self.median_hours,
            "overdue": self.overdue,
        }


@attrs.frozen(kw_only=True)
class Statistics:
    """Every figure of the dashboard for one scope (the province, or one court), with a row per court."""

    as_of: datetime
    tasks: int
    by_state: dict[str, int]
    served: int
    by_method: dict[str, int]
    filed: int
    funnel: tuple[tuple[str, int], ...]
    fallback_rate: float
    electronic_share: float
    volume: tuple[tuple[str, int, int], ...]  # (day, created, served)
    cycle_served: Distribution  # created -> effective service
    cycle_filed: Distribution  # effective service -> proof filed
    channels: tuple[ChannelRow, ...]
    centres: tuple[CentreLoad, ...]
    overdue: dict[str, int]
    cost: dict[str, float]
    # refused receipts of the whole store (they may name no task of the scope), by source and reason
    refused_receipts: tuple[RefusedReceipts, ...] = ()
    # every figure per court, most tasks first (one row when the scope is one court)
    courts: tuple[CourtRow, ...] = ()
    court: str | None = None  # the scope's court; None for the whole province

    @property
    def refused(self) -> int:
        """How many receipts were refused in all."""
        return sum(r.count for r in self.refused_receipts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with English keys and UTC times with their offset (the ``stats --json`` output)."""
        return {
            "as_of": self.as_of.isoformat(),
            "tasks": self.tasks,
            "by_state": dict(sorted(self.by_state.items())),
            "served": self.served,
            "by_method": dict(sorted(self.by_method.items())),
            "filed": self.filed,
            "funnel": [{"stage": s, "tasks": n} for s, n in self.funnel],
            "fallback_rate": round(self.fallback_rate, 6),
            "electronic_share": round(self.electronic_share, 6),
            "volume": [{"day": d, "created": c, "served": s} for d, c, s in self.volume],
            "cycle_created_to_served": self.cycle_served.to_dict(),
            "cycle_served_to_filed": self.cycle_filed.to_dict(),
            "channels": [c.to_dict() for c in self.channels],
            "centres": [c.to_dict() for c in self.centres],
            "overdue": dict(sorted(self.overdue.items())),
            "cost": {k: round(v, 2) for k, v in self.cost.items()},
            "refused_receipts": {
                "total": self.refused,
                "by_reason": _by_reason(self.refused_receipts),
                "sources": [r.to_dict() for r in self.refused_receipts],
            },
            "scope": {"court": self.court},
            "courts": [c.to_dict() for c in self.courts],
        }


def _by_reason(rows: Sequence[RefusedReceipts]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.reason] = counts.get(row.reason, 0) + row.count
    return dict(sorted(counts.items()))


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _split_case(case_key: str) -> tuple[str, str]:
    """Court and case number of a case key; the first ``|`` splits it, since a court never holds one
    (:func:`delivery_sdk.model.case_key`)."""
    court, _, number = case_key.partition("|")
    return court, number


# Created on a store the first time it is supervised, not by the store's migrations: they make statistics
# over a million tasks index scans, and they cost every event the engine inserts (about a tenth of its
# write throughput), which a store nobody supervises should not pay.
SUPERVISION_INDEXES: dict[str, str] = {
    "events_supervision": (
        "CREATE INDEX IF NOT EXISTS events_supervision ON events(type, task_id, sv_key, sv_time, at) "
        "WHERE type IN ('dispatch.queued', 'print.routed', 'service.served', 'service.filed', "
        "'service.fell_back_to_post', 'publication.started')"
    ),
    "events_dispatch": "CREATE INDEX IF NOT EXISTS events_dispatch ON events(sv_ref, type) WHERE sv_ref IS NOT NULL",
}


def _create_indexes(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        for statement in SUPERVISION_INDEXES.values():
            db.execute(statement)
    finally:
        db.close()


class Supervisor:
    """Read-only queries over a SQLite store (of this SDK's schema version).

    ``Supervisor(path)`` reads the file through a ``mode=ro`` connection. With ``upgrade=True`` (the
    default, for the code that owns the store) a store of an older schema version is first upgraded by
    opening it once as a :class:`~delivery_sdk.store.SQLiteStore`, and a store never supervised gets the
    :data:`SUPERVISION_INDEXES`. With ``upgrade=False`` (what the ``stats`` and ``report`` commands use)
    nothing is ever written: an older store is refused with :class:`~delivery_sdk.SchemaVersionError`, a file
    that is no store with :class:`~delivery_sdk.NotAStore`, and a store without the indexes is read without
    them (the same answers, found by scans; :attr:`indexed` says which). Day boundaries for the volume
    chart are taken at ``utc_offset`` (China Standard Time). ``lang`` (``zh_CN``, the default, or ``en``) is
    the language of the texts it writes: a timeline's legal meanings and an overdue item's detail.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        upgrade: bool = True,
        utc_offset: timedelta = timedelta(hours=8),
        lang: str | None = None,
        actor: Actor | None = None,
    ) -> None:
        # who reads (docs/access.md): the ``statistics`` permission; every query keeps to the actor's courts
        self.actor = actor or LOCAL_ACTOR
        self.actor.require(Permission.STATISTICS, None, "read the supervision statistics")
        self._codes = self.actor.court_filter()
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            raise StoreError(
                "supervision reports need the SQLite store (their queries are SQLite SQL); they do not run on a "
                "PostgreSQL store yet: use delivery-sdk status/tasks/verify there"
            )
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no store at {self.path}")
        self.utc_offset = utc_offset
        self.lang = normalise_lang(lang)  # of the timelines' meanings and the overdue details (Chinese by default)
        if upgrade:
            self._upgrade()
        db = self._connect()
        try:
            self.indexed = self._has_schema(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _connect(self) -> sqlite3.Connection:
        from ..store.sqlite import connect_readonly

        db = connect_readonly(self.path)
        db.execute("PRAGMA temp_store=MEMORY")
        return db

    def _upgrade(self) -> None:
        """Migrate an older store and create the supervision indexes, where either is missing."""
        from .._exceptions import SchemaVersionError
        from ..store.sqlite import SQLiteStore, connect_readonly

        try:
            db = connect_readonly(self.path)
        except SchemaVersionError as exc:
            if "older" not in str(exc):
                raise
            SQLiteStore(self.path).close()
            db = connect_readonly(self.path)
        try:
            current = self._has_schema(db)
        finally:
            db.close()
        if not current:
            _create_indexes(self.path)

    @staticmethod
    def _has_schema(db: sqlite3.Connection) -> bool:
        """Whether the supervision indexes are there (the columns come with the current schema)."""
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        return set(SUPERVISION_INDEXES) <= indexes

    def close(self) -> None:
        """Close the read-only connection."""
        self._db.close()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scope -----------------------------------------------------------------------------------------

    def _scope_sql(self, scope: Scope, column: str = "task_id") -> tuple[str, list[Any]]:
        """``AND column IN (...)`` restricting to the scope's tasks (empty for the whole store)."""
        if scope.everything and self._codes is None:
            return "", []
        where, params = self._task_filter(court=scope.court, created_from=scope.created_from, to=scope.created_to)
        return f" AND {column} IN (SELECT task_id FROM tasks t WHERE {where})", params

    def _task_filter(
        self,
        *,
        court: str | None = None,
        case_number: str | None = None,
        state: str | None = None,
        created_from: datetime | None = None,
        to: datetime | None = None,
    ) -> tuple[str, list[Any]]:
        terms = ["1"]
        params: list[Any] = []
        if self._codes is not None:  # the actor's courts, and the courts under them
            terms.append("(" + " OR ".join("(t.court >= ? AND t.court < ?)" for _ in self._codes) + ")")
            params += [bound for code in self._codes for bound in (code, code + "\uffff")]
        if court is not None and case_number is not None:
            terms.append("t.case_key = ?")
            params.append(f"{court}|{case_number}")
        elif court is not None:
            terms.append("t.case_key >= ? AND t.case_key < ?")
            params += [f"{court}|", f"{court}}}"]  # '}' sorts right after '|'
        elif case_number is not None:
            terms.append("substr(t.case_key, instr(t.case_key, '|') + 1) = ?")
            params.append(case_number)
        if state is not None:
            terms.append("t.state = ?")
            params.append(state)
        if created_from is not None:
            terms.append("t.created_at >= ?")
            params.append(created_from.astimezone(UTC).isoformat())
        if to is not None:
            terms.append("t.created_at < ?")
            params.append(to.astimezone(UTC).isoformat())
        return " AND ".join(terms), params

    # -- tasks and timelines ---------------------------------------------------------------------------

    def tasks(
        self,
        *,
        court: str | None = None,
        case_number: str | None = None,
        state: str | None = None,
        channel: str | None = None,
        centre: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[TaskRow]:
        """Tasks matching every filter given, oldest first. ``channel`` is a channel name or kind
        (``sms``, ``eservice-platform``...) the task had a dispatch on; ``centre`` a print centre it was
        routed to; ``created_to`` is exclusive."""
        where, params = self._task_filter(
            court=court, case_number=case_number, state=state, created_from=created_from, to=created_to
        )
        if channel is not None:
            where += (
                f" AND EXISTS (SELECT 1 FROM events e WHERE {_sv('e.')} AND e.type = 'dispatch.queued'"
                " AND e.task_id = t.task_id"
                " AND (substr(e.sv_key, 1, instr(e.sv_key, ' ') - 1) = ?"
                " OR substr(e.sv_key, instr(e.sv_key, ' ') + 1) = ?))"
            )
            params += [channel, channel]
        if centre is not None:
            where += (
                f" AND EXISTS (SELECT 1 FROM events e WHERE {_sv('e.')} AND e.type = 'print.routed'"
                " AND e.task_id = t.task_id"
                " AND e.sv_key = ?)"
            )
            params.append(centre)
        rows = self._db.execute(
            "SELECT t.task_id, t.case_key, t.state, t.created_at, t.updated_at,"
            f" (SELECT sv_key || '|' || sv_time FROM events e WHERE {_sv('e.')} AND e.type = 'service.served'"
            "  AND e.task_id = t.task_id ORDER BY e.seq DESC LIMIT 1),"
            f" (SELECT sv_key FROM events e WHERE {_sv('e.')} AND e.type = 'print.routed' AND e.task_id = t.task_id"
            "  ORDER BY e.seq DESC LIMIT 1),"
            " (SELECT group_concat(DISTINCT substr(sv_key, instr(sv_key, ' ') + 1)) FROM events e"
            f"  WHERE {_sv('e.')} AND e.type = 'dispatch.queued' AND e.task_id = t.task_id)"
            f" FROM tasks t WHERE {where} ORDER BY t.created_at, t.task_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        out = []
        for task_id, case_key, state_, created, updated, served, centre_id, channels in rows:
            court_, number = _split_case(case_key)
            method, _, served_at = served.partition("|") if served else (None, "", "")
            out.append(
                TaskRow(
                    task_id=task_id,
                    court=court_,
                    case_number=number,
                    state=state_,
                    created_at=_dt(created),
                    updated_at=_dt(updated),
                    served_method=method,
                    served_at=_dt(served_at) if served_at else None,
                    centre_id=centre_id,
                    channels=tuple(sorted(channels.split(","))) if channels else (),
                )
            )
        return out

    def count_tasks(self, *, court: str | None = None, state: str | None = None) -> int:
        """How many tasks match the court and state given."""
        where, params = self._task_filter(court=court, state=state)
        return int(self._db.execute(f"SELECT COUNT(*) FROM tasks t WHERE {where}", params).fetchone()[0])

    def timeline(self, task_id: str) -> list[TimelineEntry]:
        """Every event of the task in order, with its time, actor and legal meaning (personal data masked)."""
        if self._codes is not None:
            row = self._db.execute("SELECT court FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is not None:
                self.actor.require(Permission.STATISTICS, row[0], "read a task's timeline")
        rows = self._db.execute(
            "SELECT task_seq, body FROM events WHERE task_id = ? ORDER BY task_seq", (task_id,)
        ).fetchall()
        if not rows:
            raise UnknownTask(task_id)
        out = []
        for task_seq, body in rows:
            event = event_from_dict(loads(body))
            out.append(
                TimelineEntry(
                    task_seq=task_seq,
                    at=event.at,
                    type=event.TYPE,
                    actor=actor_of(event),
                    meaning=describe(event, self.lang),
                )
            )
        return out

    # -- statistics ------------------------------------------------------------------------------------

    def latest_event_time(self) -> datetime:
        """The store's latest change (the default ``as_of``); now when the store is empty."""
        value = self._db.execute("SELECT MAX(updated_at) FROM tasks").fetchone()[0]
        return datetime.now(UTC) if value is None else _dt(value)

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._db.execute(sql, params).fetchone()[0] or 0)

    def _tasks_with(self, etype: str, scope: Scope) -> int:
        cond, params = self._scope_sql(scope)
        return self._count(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT task_id FROM events WHERE {_sv()} AND type = ?{cond})",
            [etype, *params],
        )

    def by_state(self, scope: Scope = Scope()) -> dict[str, int]:
        """Tasks per state in the scope."""
        where, params = self._task_filter(court=scope.court, created_from=scope.created_from, to=scope.created_to)
        return dict(self._db.execute(f"SELECT state, COUNT(*) FROM tasks t WHERE {where} GROUP BY state", params))

    def _shift(self) -> str:
        return f"{self.utc_offset.total_seconds() / 3600:+g} hours"

    def served_cycles(self, scope: Scope = Scope()) -> Iterator[tuple[str, float, float | None, str]]:
        """Per served task (its latest service): method, hours from creation to effective service, hours from
        effective service to the proof filed (None if not filed) and the day of service at ``utc_offset``."""
        for method, cycle, filing, day, _court in self._served_rows(scope):
            yield method, cycle, filing, day

    def _served_rows(self, scope: Scope) -> Iterator[tuple[str, float, float | None, str, str]]:
        """:meth:`served_cycles` with each task's court."""
        cond, params = self._scope_sql(scope, "s.task_id")
        yield from self._db.execute(
            "SELECT s.sv_key, (julianday(s.sv_time) - julianday(t.created_at)) * 24,"
            " (julianday((SELECT MAX(f.at) FROM events f"
            f" WHERE {_sv('f.')} AND f.type = 'service.filed' AND f.task_id = s.task_id))"
            f"  - julianday(s.sv_time)) * 24, date(s.sv_time, '{self._shift()}'),"
            " substr(t.case_key, 1, instr(t.case_key, '|') - 1)"
            " FROM (SELECT task_id, sv_key, sv_time, MAX(seq) FROM events"
            f" WHERE {_sv()} AND type = 'service.served'"
            " GROUP BY task_id) s"
            f" JOIN tasks t ON t.task_id = s.task_id WHERE 1{cond}",
            params,
        )

    def dispatch_outcomes(self, scope: Scope = Scope()) -> list[tuple[str, int, int, int, int, int, int, int, int]]:
        """Per ``"kind channel"``: dispatches, attempts (any provider answer), delivered, printed, mailed,
        signed, returned, and refused by the carrier before they reached the channel (a print job whose
        waybill the postal carrier refused) — one indexed join of queued dispatches with their receipts."""
        cond, params = self._scope_sql(scope, "q.task_id")
        return self._db.execute(
            "SELECT q.sv_key, COUNT(*), COUNT(r.ref), COALESCE(SUM(r.ok), 0), COALESCE(SUM(r.printed), 0),"
            " COALESCE(SUM(r.mailed), 0), COALESCE(SUM(r.signed), 0), COALESCE(SUM(r.returned), 0),"
            " COALESCE(SUM(r.carrier), 0)"
            " FROM events q LEFT JOIN ("
            "  SELECT sv_ref AS ref,"
            f"   MAX(type IN {_in(_DELIVERED)}) AS ok, MAX(type = 'print.printed') AS printed,"
            "   MAX(type = 'post.mailed') AS mailed, MAX(type = 'post.signed') AS signed,"
            "   MAX(type = 'post.returned') AS returned,"
            "   MAX(type = 'dispatch.failed' AND json_extract(body, '$.failed_by') = 'carrier') AS carrier"
            f"  FROM events WHERE sv_ref IS NOT NULL AND type IN {_in(_RECEIPTS)} GROUP BY sv_ref"
            ") r ON r.ref = q.sv_ref"
            f" WHERE {_sv('q.')} AND q.type = 'dispatch.queued'{cond} GROUP BY q.sv_key ORDER BY q.sv_key",
            params,
        ).fetchall()

    def _created_per_day(self, scope: Scope) -> dict[str, int]:
        where, params = self._task_filter(court=scope.court, created_from=scope.created_from, to=scope.created_to)
        return dict(
            self._db.execute(
                f"SELECT date(t.created_at, '{self._shift()}') AS d, COUNT(*) FROM tasks t WHERE {where} GROUP BY d",
                params,
            )
        )

    def volume(self, scope: Scope = Scope()) -> list[tuple[str, int, int]]:
        """(day, tasks created, tasks served) per calendar day at ``utc_offset``."""
        served: dict[str, int] = {}
        for _method, _cycle, _filing, day in self.served_cycles(scope):
            served[day] = served.get(day, 0) + 1
        return _merge_days(self._created_per_day(scope), served)

    def statistics(
        self,
        *,
        scope: Scope = Scope(),
        levels: ServiceLevels = ServiceLevels(),
        costs: CostRates = CostRates(),
        as_of: datetime | None = None,
        overdue: Sequence[OverdueItem] | None = None,
    ) -> Statistics:
        """Every figure of the dashboard, for the tasks in ``scope``. ``as_of`` (default: the store's latest
        event) is the moment overdue work is measured against; ``overdue`` passes the list if the caller
        already has it (from :meth:`overdue` with the same arguments)."""
        as_of = as_of or self.latest_event_time()
        # The three heavy scans run at once, each on its own read-only connection (sqlite3 releases the GIL
        # while SQLite works); the light counts run here meanwhile.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="supervision") as pool:
            outcomes_job = pool.submit(self._on_own_connection, lambda sup: sup.dispatch_outcomes(scope))
            cycles_job = pool.submit(self._on_own_connection, lambda sup: sup._cycle_summary(scope))
            overdue_job = (
                None
                if overdue is not None
                else pool.submit(
                    self._on_own_connection, lambda sup: sup.overdue(levels=levels, as_of=as_of, scope=scope)
                )
            )
            by_state = self.by_state(scope)
            tasks = sum(by_state.values())
            fell_back = self._tasks_with("service.fell_back_to_post", scope)
            published = self._tasks_with("publication.started", scope)
            routed = self._tasks_with("print.routed", scope)
            electronic_tasks = self._electronic_tasks(scope)
            created_per_day = self._created_per_day(scope)
            per_court = self._tasks_per_court(scope)
            by_method, served_per_day, cycle, filing, court_cycles = cycles_job.result()
            outcomes = outcomes_job.result()
            if overdue_job is not None:
                overdue = overdue_job.result()
        served = len(cycle)
        channels = []
        centres = []
        for key, queued, attempts, delivered, printed, mailed, signed, returned, refused in outcomes:
            kind, _, channel = key.partition(" ")
            # a job the carrier refused never reached the channel (the centre): it is no attempt of it
            channels.append(
                ChannelRow(
                    kind=kind,
                    channel=channel,
                    dispatches=queued - refused,
                    attempts=attempts - refused,
                    delivered=delivered,
                    carrier_refused=refused,
                )
            )
            if kind == "print":
                centres.append(
                    CentreLoad(
                        centre_id=channel,
                        jobs=queued - refused,
                        printed=printed,
                        mailed=mailed,
                        signed=signed,
                        returned=returned,
                        open=queued - refused - printed,
                        carrier_refused=refused,
                    )
                )
        funnel = (
            ("submitted", tasks),
            ("electronic attempted", electronic_tasks),
            ("served electronically", by_method.get("electronic", 0)),
            ("fell back to post", fell_back),
            ("routed to a print centre", routed),
            ("served by post", by_method.get("postal", 0)),
            ("publication", published),
            ("served by publication", by_method.get("publication", 0)),
        )
        counts: dict[str, int] = {"eservice_unconfirmed": 0, "print_not_printed": 0, "needs_attention": 0}
        for item in overdue or ():
            counts[item.rule] += 1
        mailed_jobs = sum(c.mailed for c in centres)
        electronic_attempts = sum(c.attempts for c in channels if _electronic(c.kind))
        baseline = served * costs.postal_yuan
        actual = (
            mailed_jobs * costs.postal_yuan
            + electronic_attempts * costs.electronic_yuan
            + published * costs.publication_yuan
        )
        cost = {
            "postal_unit_yuan": costs.postal_yuan,
            "electronic_unit_yuan": costs.electronic_yuan,
            "publication_unit_yuan": costs.publication_yuan,
            "baseline_all_postal_yuan": baseline,
            "actual_yuan": actual,
            "savings_yuan": baseline - actual,
            "postage_avoided_yuan": by_method.get("electronic", 0) * costs.postal_yuan,
        }
        return Statistics(
            as_of=as_of,
            tasks=tasks,
            by_state=by_state,
            served=served,
            by_method=by_method,
            filed=by_state.get("filed", 0),
            funnel=funnel,
            fallback_rate=fell_back / tasks if tasks else 0.0,
            electronic_share=by_method.get("electronic", 0) / served if served else 0.0,
            volume=tuple(_merge_days(created_per_day, served_per_day)),
            cycle_served=Distribution.of(cycle),
            cycle_filed=Distribution.of(filing),
            channels=tuple(channels),
            centres=tuple(centres),
            overdue=counts,
            cost=cost,
            refused_receipts=tuple(self.refused_receipts()),
            courts=_court_rows(per_court, court_cycles, overdue or ()),
            court=scope.court,
        )

    def _tasks_per_court(self, scope: Scope) -> dict[str, tuple[int, int]]:
        """Per court: its tasks, and how many of them are open (neither served, filed nor cancelled)."""
        where, params = self._task_filter(court=scope.court, created_from=scope.created_from, to=scope.created_to)
        rows = self._db.execute(
            "SELECT substr(t.case_key, 1, instr(t.case_key, '|') - 1) AS c, COUNT(*),"
            " SUM(t.state NOT IN ('served', 'filed', 'cancelled'))"
            f" FROM tasks t WHERE {where} GROUP BY c",
            params,
        )
        return {court: (int(n), int(open_ or 0)) for court, n, open_ in rows}

    def courts(self) -> list[str]:
        """The courts that have tasks in the store, by name."""
        where, params = self._task_filter()
        rows = self._db.execute(
            f"SELECT DISTINCT substr(case_key, 1, instr(case_key, '|') - 1) FROM tasks t WHERE {where} ORDER BY 1",
            params,
        ).fetchall()
        return [row[0] for row in rows]

    # -- who looked (delivery_sdk.access) ---------------------------------------------------------------

    def _access_rows(self) -> list[tuple[str, str, str, int, int]]:
        """(court, staff_id, role, reads, distinct tasks) of the access log, in the actor's courts."""
        has = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'access_log'").fetchone()
        if has is None:
            return []
        terms, params = ["1"], list[Any]()
        if self._codes is not None:
            terms.append("(" + " OR ".join("(court >= ? AND court < ?)" for _ in self._codes) + ")")
            params += [bound for code in self._codes for bound in (code, code + "\uffff")]
        rows = self._db.execute(
            "SELECT court, staff_id, role, COUNT(*), COUNT(DISTINCT task_id) FROM access_log"
            f" WHERE {' AND '.join(terms)} GROUP BY court, staff_id, role ORDER BY court, staff_id",
            params,
        ).fetchall()
        return [(c, sid, role, int(n), int(t)) for c, sid, role, n, t in rows]

    def access_volume(self) -> list[dict[str, Any]]:
        """Reads of personal data per court (in the actor's courts): reads, tasks read, staff who read."""
        per: dict[str, list[int]] = {}
        staff: dict[str, set[str]] = {}
        for court, sid, _role, reads, tasks in self._access_rows():
            row = per.setdefault(court, [0, 0])
            row[0] += reads
            row[1] += tasks
            staff.setdefault(court, set()).add(sid)
        return [
            {"court": court, "reads": n, "tasks": t, "staff": len(staff[court])}
            for court, (n, t) in sorted(per.items())
        ]

    def unusual_readers(self, *, factor: float = 3.0, minimum: int = 10) -> list[dict[str, Any]]:
        """Staff who read the personal data of far more tasks than their peers (the others of the same role):
        more than ``factor`` times the peers' median and at least ``minimum`` tasks. Staff ids and counts only."""
        tasks: dict[tuple[str, str], int] = {}
        for _court, sid, role, _reads, n in self._access_rows():
            tasks[(sid, role)] = tasks.get((sid, role), 0) + n
        flagged = []
        for (sid, role), n in sorted(tasks.items()):
            peers = sorted(v for (other, r), v in tasks.items() if r == role and other != sid)
            if not peers or n < minimum:
                continue
            median = pystats.median(peers)
            if n > factor * median:
                flagged.append({"staff_id": sid, "role": role, "tasks": n, "peer_median": median})
        return flagged

    def refused_receipts(self) -> list[RefusedReceipts]:
        """Receipts the engine refused, per source and reason, over the store's life (kept per UTC day in the
        store's ``refused_receipts`` table); the most frequent first."""
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refused_receipts'"
        if not self._db.execute(table).fetchone():
            return []  # a store from before schema version 6
        rows = self._db.execute(
            "SELECT source, reason, SUM(count), MIN(first_at), MAX(last_at), "
            "(SELECT r2.dispatch_id FROM refused_receipts r2 WHERE r2.source = r.source AND r2.reason = r.reason "
            "ORDER BY r2.last_at DESC LIMIT 1), "
            "(SELECT r2.detail FROM refused_receipts r2 WHERE r2.source = r.source AND r2.reason = r.reason "
            "ORDER BY r2.last_at DESC LIMIT 1) "
            "FROM refused_receipts r GROUP BY source, reason ORDER BY SUM(count) DESC, source, reason"
        ).fetchall()
        return [
            RefusedReceipts(
                source=source,
                reason=reason,
                count=int(count),
                first_at=_dt(first),
                last_at=_dt(last),
                dispatch_id=dispatch_id,
                detail=detail,
            )
            for source, reason, count, first, last, dispatch_id, detail in rows
        ]

    def _on_own_connection(self, job: Callable[[Supervisor], T]) -> T:
        """Run ``job`` on a view of this supervisor with its own read-only connection (for a worker thread)."""
        view = object.__new__(Supervisor)
        view.__dict__.update(self.__dict__)
        view._db = self._connect()
        try:
            return job(view)
        finally:
            view._db.close()

    def _cycle_summary(
        self, scope: Scope
    ) -> tuple[dict[str, int], dict[str, int], array[float], array[float], dict[str, tuple[int, array[float]]]]:
        """Served tasks by method and by day, the two cycle-time samples (hours), and per court the tasks
        served electronically and the created-to-served sample."""
        by_method: dict[str, int] = {}
        per_day: dict[str, int] = {}
        cycle = array("d")
        filing = array("d")
        per_court: dict[str, tuple[int, array[float]]] = {}
        for method, cycle_h, filing_h, day, court in self._served_rows(scope):
            by_method[method] = by_method.get(method, 0) + 1
            per_day[day] = per_day.get(day, 0) + 1
            electronic, sample = per_court.get(court) or (0, array("d"))
            sample.append(max(0.0, cycle_h))
            per_court[court] = (electronic + (method == "electronic"), sample)
            cycle.append(max(0.0, cycle_h))
            if filing_h is not None:
                filing.append(max(0.0, filing_h))
        return by_method, per_day, cycle, filing, per_court

    def _electronic_tasks(self, scope: Scope) -> int:
        cond, params = self._scope_sql(scope)
        kinds = " AND ".join(f"sv_key NOT LIKE '{k} %'" for k in _not_electronic_values())
        return self._count(
            "SELECT COUNT(*) FROM (SELECT DISTINCT task_id FROM events"
            f" WHERE {_sv()} AND type = 'dispatch.queued' AND ({kinds}){cond})",
            params,
        )

    # -- overdue work ----------------------------------------------------------------------------------

    def overdue(
        self,
        *,
        levels: ServiceLevels = ServiceLevels(),
        as_of: datetime | None = None,
        scope: Scope = Scope(),
        limit: int | None = None,
    ) -> list[OverdueItem]:
        """Open work past its service level at ``as_of``, longest waiting first. Only tasks in the states
        a rule watches are read (electronic, routed, needs attention), with one query."""
        as_of = as_of or self.latest_event_time()
        e_limit = timedelta(hours=levels.eservice_unconfirmed_hours)
        p_limit = timedelta(hours=levels.print_not_printed_hours)
        watched = ["electronic", "routed"] + (["needs_attention"] if levels.needs_attention else [])
        where, params = self._task_filter(court=scope.court, created_from=scope.created_from, to=scope.created_to)
        rows = self._db.execute(
            "SELECT t.task_id, t.case_key, t.state, e.type, e.sv_key, e.sv_ref, e.at"
            " FROM tasks t CROSS JOIN events e ON e.task_id = t.task_id"  # tasks first: only the watched ones
            f" WHERE t.state IN {_in(watched)} AND {where} AND e.type <> 'task.created'"
            " ORDER BY t.task_id, e.task_seq",
            params,
        )
        items: list[OverdueItem] = []
        m = catalogue(self.lang)
        for (task_id, case_key, state), events in itertools.groupby(rows, key=lambda r: (r[0], r[1], r[2])):
            queued: dict[str, tuple[str, datetime]] = {}
            answered: dict[str, set[str]] = {}
            attention_since: datetime | None = None
            found: list[tuple[str, datetime, str]] = []
            for _t, _c, _s, etype, key, ref, at in events:
                if etype == "dispatch.queued":
                    queued[ref] = (key, _dt(at))
                elif ref is not None:
                    answered.setdefault(ref, set()).add(etype)
                elif etype == "task.needs_attention":
                    attention_since = _dt(at)
            if state == "needs_attention" and attention_since is not None:
                found.append(("needs_attention", attention_since, m("detail.needs_attention")))
            for ref, (key, at) in queued.items():
                kind, _, channel = key.partition(" ")
                seen = answered.get(ref, set())
                if _electronic(kind) and state == "electronic":
                    if not seen & _SETTLED_E and as_of - at > e_limit:
                        detail = m("detail.eservice_unconfirmed", kind=label("kind", kind, self.lang), channel=channel)
                        found.append(("eservice_unconfirmed", at, detail))
                elif kind == "print" and state == "routed" and not seen & _PRINT_DONE and as_of - at > p_limit:
                    found.append(("print_not_printed", at, m("detail.print_not_printed", centre=centre_name(channel))))
            court, number = _split_case(case_key)
            items += [
                OverdueItem(
                    task_id=task_id,
                    court=court,
                    case_number=number,
                    rule=rule,
                    since=since,
                    hours=(as_of - since).total_seconds() / 3600,
                    detail=detail,
                )
                for rule, since, detail in found
            ]
        items.sort(key=lambda i: (-i.hours, i.task_id, i.rule))
        return items if limit is None else items[:limit]


def _court_rows(
    tasks: dict[str, tuple[int, int]],
    served: dict[str, tuple[int, array[float]]],
    overdue: Sequence[OverdueItem],
) -> tuple[CourtRow, ...]:
    late: dict[str, int] = {}
    for item in overdue:
        late[item.court] = late.get(item.court, 0) + 1
    rows = []
    for court in set(tasks) | set(served):
        n, open_ = tasks.get(court, (0, 0))
        electronic, sample = served.get(court) or (0, array("d"))
        rows.append(
            CourtRow(
                court=court,
                tasks=n,
                served=len(sample),
                electronic=electronic,
                open=open_,
                median_hours=round(pystats.median(sample), 4) if sample else None,
                overdue=late.get(court, 0),
            )
        )
    rows.sort(key=lambda r: (-r.tasks, r.court))
    return tuple(rows)


def _merge_days(created: dict[str, int], served: dict[str, int]) -> list[tuple[str, int, int]]:
    return [(d, created.get(d, 0), served.get(d, 0)) for d in sorted(set(created) | set(served))]
