"""The embedded default store: one SQLite file in WAL mode, ``synchronous=FULL``.

One engine process works a store at a time (it takes an exclusive lock file beside the database; other
processes may read and ingest). Leases live in that process's memory: after a crash they are gone with
it, which is exactly a lease expiring. Every commit is one ``BEGIN IMMEDIATE`` transaction: the engine
batches many tasks into it (group commit).

Schema versions are in :data:`MIGRATIONS`; opening a store applies the missing ones in a transaction and
refuses a file written by a newer SDK.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._exceptions import IdempotencyConflict, NotAStore, SchemaVersionError, StoreError, UnknownTask
from ..access import ACCESS_CHAIN_START, AccessRecord, chain_hash, court_code
from ..events import Event, StoredEvent, TaskCreated
from ..evidence.keys import Signer
from ..evidence.log import EvidenceLog
from ..evidence.verify import Checkpoint
from ..records import AnchorReceipt
from ..serialization import _dt_out, encode_event, event_from_dict, loads
from ._base import (
    CommitResult,
    CreateResult,
    NewTask,
    OutboxEntry,
    RefusalCount,
    RefusedReceipt,
    StoreCapabilities,
    TaskRow,
    TaskWrite,
    refusal_rows,
)

__all__ = ["MIGRATIONS", "SUPERVISION_BACKFILL", "SQLiteStore", "connect_readonly"]

# The supervision columns of events written before migration 5 (or by a tool that wrote bodies only),
# derived from the JSON bodies exactly as migration 2's virtual columns were; _SUPERVISION is the same in
# Python for the rows the store writes.
SUPERVISION_BACKFILL = """
    UPDATE events SET
        sv_ref = CASE WHEN type IN ('dispatch.queued', 'dispatch.delivered', 'dispatch.read', 'dispatch.failed',
                                    'dispatch.timed_out', 'print.printed', 'post.mailed', 'post.signed',
                                    'post.returned')
                      THEN json_extract(body, '$.dispatch_id') END,
        sv_key = CASE type
                      WHEN 'dispatch.queued' THEN json_extract(body, '$.kind') || ' ' || json_extract(body, '$.channel')
                      WHEN 'print.routed' THEN json_extract(body, '$.centre_id')
                      WHEN 'service.served' THEN json_extract(body, '$.method') END,
        sv_time = CASE type WHEN 'service.served' THEN json_extract(body, '$.effective_at') END
    WHERE type IN ('dispatch.queued', 'dispatch.delivered', 'dispatch.read', 'dispatch.failed', 'dispatch.timed_out',
                   'print.printed', 'post.mailed', 'post.signed', 'post.returned', 'print.routed', 'service.served')
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE tasks (
        task_id     TEXT PRIMARY KEY,
        client_key  TEXT UNIQUE,
        fingerprint TEXT NOT NULL,
        case_key    TEXT NOT NULL,
        state       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        due_at      REAL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX tasks_due ON tasks(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX tasks_case ON tasks(case_key);
    CREATE TABLE events (
        seq      INTEGER PRIMARY KEY,
        task_id  TEXT NOT NULL,
        task_seq INTEGER NOT NULL,
        type     TEXT NOT NULL,
        at       TEXT NOT NULL,
        body     TEXT NOT NULL,
        UNIQUE (task_id, task_seq)
    );
    CREATE TABLE outbox (
        dispatch_id TEXT PRIMARY KEY,
        task_id     TEXT NOT NULL,
        channel     TEXT NOT NULL,
        done        INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_pending ON outbox(done) WHERE done = 0;
    CREATE TABLE receipts (
        dedupe_key TEXT PRIMARY KEY,
        task_id    TEXT NOT NULL
    );
    """,
    # 2: supervision (delivery_sdk.supervision): three virtual columns read out of an event's JSON body
    # (thought to cost the engine's writes nothing; migration 5 makes them plain columns) and tasks_created
    # for date ranges. The two indexes over those columns are created by the supervision layer the first time
    # it opens a store (supervision.query.SUPERVISION_INDEXES): they cost every event insert, so a store
    # nobody supervises does not pay for them. No statement may hold a ';' (the migration runner splits on it).
    """
    ALTER TABLE events ADD COLUMN sv_ref TEXT GENERATED ALWAYS AS (
        CASE WHEN type IN ('dispatch.queued', 'dispatch.delivered', 'dispatch.read', 'dispatch.failed',
                           'dispatch.timed_out', 'print.printed', 'post.mailed', 'post.signed', 'post.returned')
             THEN json_extract(body, '$.dispatch_id') END
    ) VIRTUAL;
    ALTER TABLE events ADD COLUMN sv_key TEXT GENERATED ALWAYS AS (
        CASE type WHEN 'dispatch.queued' THEN json_extract(body, '$.kind') || ' ' || json_extract(body, '$.channel')
                  WHEN 'print.routed' THEN json_extract(body, '$.centre_id')
                  WHEN 'service.served' THEN json_extract(body, '$.method') END
    ) VIRTUAL;
    ALTER TABLE events ADD COLUMN sv_time TEXT GENERATED ALWAYS AS (
        CASE type WHEN 'service.served' THEN json_extract(body, '$.effective_at') END
    ) VIRTUAL;
    CREATE INDEX tasks_created ON tasks(created_at)
    """,
    # 3: the evidence log (delivery_sdk.evidence): every complete perfect subtree of the RFC 9162 tree over
    # the events (level 0: the leaf hashes, leaf i = event seq i + 1) and the signed checkpoints.
    """
    CREATE TABLE evidence_nodes (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE evidence_checkpoints (
        size       INTEGER PRIMARY KEY,
        note       TEXT NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    # 4: receipts of checkpoints anchored outside (a notary, a chain), as the evidence sinks returned them
    """
    CREATE TABLE evidence_anchors (
        size        INTEGER NOT NULL,
        notary      TEXT NOT NULL,
        receipt     TEXT NOT NULL,
        anchored_at TEXT NOT NULL,
        PRIMARY KEY (size, notary)
    )
    """,
    # 5: the supervision columns become plain columns that the store fills from the event it writes. SQLite
    # computes virtual columns on every INSERT as well, and their json_extract calls more than doubled the
    # cost of an event row. Existing rows get theirs from their bodies, with migration 2's expressions
    # (SUPERVISION_BACKFILL); the supervision indexes are dropped first, and the supervision layer creates them
    # again on its next open.
    """
    DROP INDEX IF EXISTS events_supervision;
    DROP INDEX IF EXISTS events_dispatch;
    ALTER TABLE events DROP COLUMN sv_ref;
    ALTER TABLE events DROP COLUMN sv_key;
    ALTER TABLE events DROP COLUMN sv_time;
    ALTER TABLE events ADD COLUMN sv_ref TEXT;
    ALTER TABLE events ADD COLUMN sv_key TEXT;
    ALTER TABLE events ADD COLUMN sv_time TEXT;
    """
    + SUPERVISION_BACKFILL,
    # 6: receipts the engine refused (delivery_sdk.trust: not the dispatch's own adapter, a report that adapter
    # cannot make, an implausible time), counted per UTC day, source and reason: bounded however many arrive.
    # Nothing of the report is kept but the dispatch id it named and why it was refused.
    """
    CREATE TABLE refused_receipts (
        day         TEXT NOT NULL,
        source      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        count       INTEGER NOT NULL,
        first_at    TEXT NOT NULL,
        last_at     TEXT NOT NULL,
        dispatch_id TEXT NOT NULL,
        detail      TEXT NOT NULL,
        PRIMARY KEY (day, source, reason)
    )
    """,
    # 7: one centre, many courts (delivery_sdk.access): every task's court code, read from its case number
    # (court_code(), a function the store registers; '' where the number carries none), indexed on the court
    # alone (a court never changes: the engine's state updates do not touch the index); and the
    # access log, every read of personal data by an actor, each record chained to the one before (chain).
    """
    ALTER TABLE tasks ADD COLUMN court TEXT NOT NULL DEFAULT '';
    UPDATE tasks SET court = court_code(substr(case_key, instr(case_key, '|') + 1));
    CREATE INDEX tasks_court ON tasks(court);
    CREATE TABLE access_log (
        seq      INTEGER PRIMARY KEY,
        at       TEXT NOT NULL,
        staff_id TEXT NOT NULL,
        role     TEXT NOT NULL,
        task_id  TEXT NOT NULL,
        court    TEXT NOT NULL,
        what     TEXT NOT NULL,
        chain    BLOB NOT NULL
    );
    CREATE INDEX access_task ON access_log(task_id);
    CREATE INDEX access_staff ON access_log(staff_id)
    """,
)


# An absent supervision value is bound as "" and stored as NULL (NULLIF in _INSERT_EVENT): the sqlite3 module
# binds None (and bytes) through its adapter lookup, which formats and clears two AttributeErrors per value
# (some 20 values per task), where a str binds directly.
Supervision = tuple[str, str, str]
_NO_SUPERVISION: Supervision = ("", "", "")
# Receipt events about one dispatch (what sv_ref carries, beside dispatch.queued); supervision counts them.
DISPATCH_REPORT_TYPES = (
    "dispatch.delivered",
    "dispatch.read",
    "dispatch.failed",
    "dispatch.timed_out",
    "print.printed",
    "post.mailed",
    "post.signed",
    "post.returned",
)
# (sv_ref, sv_key, sv_time) of an event, by its type: what SUPERVISION_BACKFILL derives from the body.
_SUPERVISION: dict[str, Callable[[Any], Supervision]] = {
    "dispatch.queued": lambda e: (e.dispatch_id, f"{e.kind._value_} {e.channel}", ""),
    **dict.fromkeys(DISPATCH_REPORT_TYPES, lambda e: (e.dispatch_id, "", "")),
    "print.routed": lambda e: ("", e.centre_id, ""),
    "service.served": lambda e: ("", e.method._value_, _dt_out(e.effective_at)),
}


def _row(event: Event) -> tuple[str, str, bytes, Supervision]:
    """An event's ``at`` text, stored body, that body as bytes (the evidence leaf hashes them) and its
    supervision columns."""
    at, body = encode_event(event)
    derive = _SUPERVISION.get(event.TYPE)
    return at, body.decode(), body, _NO_SUPERVISION if derive is None else derive(event)


_INSERT_EVENT = (
    "INSERT INTO events (task_id, task_seq, type, at, body, sv_ref, sv_key, sv_time) "
    "VALUES (?, ?, ?, ?, CAST(? AS TEXT), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''))"
)
_UPDATE_TASK = (
    "UPDATE tasks SET state = ?, version = ?, due_at = ?, updated_at = COALESCE(?, updated_at) "
    "WHERE task_id = ? AND version = ?"
)


def _decoded(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Event, int]]:
    return [(event_from_dict(loads(body)), task_seq) for _, task_seq, body in rows]


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _from_ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# The first 16 bytes of every SQLite 3 database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every delivery-sdk store has had since migration 3; a file without them is someone else's.
_STORE_TABLES = frozenset(
    {"tasks", "events", "outbox", "receipts", "evidence_nodes", "evidence_checkpoints", "access_log"}
)


def _court_code_sql(case_number: object) -> str:
    return (court_code(case_number) or "") if isinstance(case_number, str) else ""


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to the delivery-sdk store at ``path``, after checking that it is one.

    Nothing is written to the file, whatever it holds: the file's kind is checked from its first bytes
    before SQLite opens it, the connection is ``mode=ro`` with ``query_only`` on, and no migration runs.
    A store in a folder the reader cannot write (a copy on read-only media, a file owned by another user)
    is still read: SQLite then opens it ``immutable`` when no write-ahead log is pending.

    Raises :class:`FileNotFoundError` (nothing at ``path``), :class:`NotAStore` (a folder, an empty file,
    not SQLite, another application's database) or :class:`SchemaVersionError` (a store of another schema
    version: a newer SDK wrote it, or an older one that ``delivery-sdk migrate`` must upgrade first).
    """
    where = Path(path)
    shown = str(path)
    if shown == ":memory:":
        raise NotAStore("':memory:' is a new, empty database, not a store to read: give the store's file")
    if not where.exists():
        raise FileNotFoundError(f"no store at {shown}; give the path of a delivery-sdk store (the demo prints it)")
    if where.is_dir():
        raise NotAStore(f"{shown} is a folder, not a delivery-sdk store: give the store's file")
    try:
        with where.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise NotAStore(f"cannot read {shown}: {exc.strerror or exc}") from None
    if not head:
        raise NotAStore(f"{shown} is an empty file, not a delivery-sdk store")
    if head != _SQLITE_MAGIC:
        raise NotAStore(f"{shown} is not a SQLite database, so not a delivery-sdk store")
    uri = where.resolve().as_uri()
    try:
        db = _connect_ro(uri, where)
    except sqlite3.Error as exc:
        raise NotAStore(f"cannot read {shown} as a SQLite database: {exc}") from None
    try:
        db.execute("PRAGMA query_only=ON")
        db.execute("PRAGMA busy_timeout=10000")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        db.close()
        raise NotAStore(f"cannot read {shown} as a SQLite database: {exc}") from None
    if version == 0 or not {"tasks", "events"} <= tables:
        db.close()
        raise NotAStore(
            f"{shown} is a SQLite database but not a delivery-sdk store (it lacks the store's tables); "
            "nothing was changed"
        )
    if version > len(MIGRATIONS):
        db.close()
        raise SchemaVersionError(
            f"store {shown!r} has schema version {version}, newer than this SDK knows ({len(MIGRATIONS)}); "
            "upgrade delivery-sdk to read it"
        )
    if version < len(MIGRATIONS):
        db.close()
        raise SchemaVersionError(
            f"store {shown!r} has schema version {version}, older than this SDK's {len(MIGRATIONS)}: "
            f"upgrade it once with 'delivery-sdk migrate --store {shown}' (that writes), then read it"
        )
    missing = _STORE_TABLES - tables
    if missing:
        db.close()
        raise NotAStore(f"{shown} claims the store's schema but lacks its tables {', '.join(sorted(missing))}")
    return db


def _connect_ro(uri: str, where: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        # A WAL store whose folder this process cannot write (no -shm to create): without a pending log,
        # the file alone is the whole database and may be read as immutable.
        db.close()
        wal = where.with_name(where.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return db


class SQLiteStore:
    """A :class:`~delivery_sdk.store.TaskStore` on one SQLite file (or ``":memory:"``)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        synchronous: str = "FULL",
        evidence: bool = True,
        readonly: bool = False,
    ) -> None:
        self.path = str(path)
        self.readonly = readonly
        if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            raise StoreError("synchronous must be FULL, NORMAL or EXTRA (OFF would lose committed events)")
        if readonly:
            self._db = connect_readonly(self.path)
        else:
            try:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                # first, so that processes opening a new file at once wait for each other's locks
                self._db.execute("PRAGMA busy_timeout=10000")
                self._refuse_foreign()  # before journal_mode, which rewrites the file's header
                self._wal()
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._migrate()
            except sqlite3.Error as exc:
                self._close_quietly()
                raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
            except StoreError:
                self._close_quietly()
                raise
        self.evidence: EvidenceLog | None = None
        if evidence:
            self.evidence = EvidenceLog(self._db)
            if not readonly:  # a reader leaves uncovered events to `verify`, which counts them
                self._backfill_evidence()
        self._leases: dict[str, float] = {}
        self._lock_file: Any = None
        self.transactions = 0  # write transactions committed through this object (for benchmarks)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    # -- schema ------------------------------------------------------------------------------------

    def _wal(self) -> None:
        """Switch a new file to WAL. Two processes switching one file at once can deadlock on the lock
        upgrade, which SQLite answers with an immediate SQLITE_BUSY (no busy handler): try again, briefly."""
        deadline = time.monotonic() + 10.0
        pause = 0.005
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _refuse_foreign(self) -> None:
        # one statement, so one snapshot: another process migrating this new file meanwhile commits its tables
        # and its user_version together, and must not be seen half (tables, version 0) as a foreign file
        version, tables = self._db.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')"
        ).fetchone()
        if version == 0 and tables:
            raise NotAStore(
                f"{self.path!r} is a SQLite database of another application (it has tables but no delivery-sdk "
                "schema): delivery-sdk will not add its tables to it; give a new file or an existing store"
            )

    def _migrate(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise SchemaVersionError(
                f"store {self.path!r} has schema version {version}, newer than this SDK knows "
                f"({len(MIGRATIONS)}); upgrade delivery-sdk to open it"
            )
        if version == len(MIGRATIONS):
            return
        db.create_function("court_code", 1, _court_code_sql, deterministic=True)  # migration 7
        db.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while this one waited for the write lock: read it again
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``)."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def acquire_engine_lock(self) -> None:
        """Make this process the store's only engine; raises :class:`StoreError` if another one runs."""
        if self.path == ":memory:" or self._lock_file is not None:
            return
        handle = open(self.path + ".engine-lock", "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreError(
                f"another engine is already running on {self.path!r}; the SQLite store serves one engine "
                "process (use the PostgreSQL store for several workers)"
            ) from None
        self._lock_file = handle

    # -- writing -----------------------------------------------------------------------------------

    def _begin(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.path!r} was opened read-only: open it without readonly=True to write")
        self._db.execute("BEGIN IMMEDIATE")

    def create_tasks(self, tasks: Sequence[NewTask]) -> CreateResult:
        """Insert new tasks with their ``task.created`` events, atomically."""
        db = self._db
        ids: list[str] = []
        created: list[bool] = []
        rows: list[tuple[Any, ...]] = []
        task_rows: list[tuple[Any, ...]] = []
        events: list[Any] = []
        # before the write lock; a client that already serialised the event hands its body in, as UTF-8 that
        # goes to SQLite as it is (CAST in _INSERT_EVENT): a request holds Chinese text, which would cost a
        # decode here and an encode again where sqlite3 binds the str
        serialised = [
            (_dt_out(new.created.at), bytearray(new.body), new.body, _NO_SUPERVISION) if new.body else _row(new.created)
            for new in tasks
        ]
        self._begin()
        try:
            existing = self._client_keys([n.client_key for n in tasks if n.client_key is not None])
            leaves: list[tuple[int, type[Event], bytes]] = []
            for new, (at, body, raw, _) in zip(tasks, serialised, strict=True):
                found = existing.get(new.client_key) if new.client_key is not None else None
                if found is not None:
                    if found[1] != new.fingerprint:
                        raise IdempotencyConflict(new.client_key or "", found[0])
                    ids.append(found[0])
                    created.append(False)
                    continue
                task_rows.append(
                    (new.task_id, new.client_key, new.fingerprint, new.case_key, new.court, _ts(new.due_at), at, at)
                )
                rows.append((new.task_id, 1, new.created.TYPE, at, body, "", "", ""))
                events.append(new.created)
                leaves.append((1, TaskCreated, raw))
                ids.append(new.task_id)
                created.append(True)
            db.executemany(
                "INSERT INTO tasks (task_id, client_key, fingerprint, case_key, court, state, version, due_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'created', 1, ?, ?, ?)",
                task_rows,
            )
            stored = self._insert_events(rows)
            staged = self.evidence.stage(stored[0][0], leaves) if self.evidence is not None and stored else None
            db.execute("COMMIT")
            self.transactions += 1
            if staged is not None and self.evidence is not None:
                self.evidence.accept(staged)
        except IdempotencyConflict:
            db.execute("ROLLBACK")
            raise
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"cannot create tasks: {exc} (a client key repeated within one submission?)") from exc
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return CreateResult(
            task_ids=tuple(ids),
            created=tuple(created),
            stored=tuple(StoredEvent(seq=s, task_seq=t, event=e) for (s, t), e in zip(stored, events, strict=True)),
        )

    def _insert_events(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
        """Append events ``(task_id, task_seq, type, at, body, sv_ref, sv_key, sv_time)``; returns their
        ``(seq, task_seq)``. SQLite numbers them: ``seq`` is the rowid, and a row inserted without one gets
        the largest so far plus one, so inside the write transaction they are ``first, first + 1, ...``."""
        if not rows:
            return []
        db = self._db
        first = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0] + 1
        db.executemany(_INSERT_EVENT, rows)
        last = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        if last != first + len(rows) - 1:  # pragma: no cover - SQLite's documented rowid choice
            raise StoreError(f"events were numbered {first}..{last}, expected {first}..{first + len(rows) - 1}")
        return [(first + i, row[1]) for i, row in enumerate(rows)]

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        """Write every non-conflicting ``TaskWrite`` in one transaction."""
        db = self._db
        conflicts: set[str] = set()
        # Serialise before taking the write lock: the transaction holds it only for the SQL.
        bodies = [[_row(e) for e in w.events] for w in writes]
        updates = [
            (
                w.state,
                w.expected_version + len(w.events),
                _ts(w.due_at),
                rows[-1][0] if rows else None,
                w.task_id,
                w.expected_version,
            )
            for w, rows in zip(writes, bodies, strict=True)
        ]
        # The usual case (each task once, no receipt that must be new) needs no read: the versioned UPDATEs
        # either all match, or the savepoint is rolled back and the writes are checked one by one.
        simple = len({w.task_id for w in writes}) == len(writes)
        self._begin()
        try:
            accepted: list[int] | None = None
            if simple:
                db.execute("SAVEPOINT versions")
                if db.executemany(_UPDATE_TASK, updates).rowcount == len(writes):
                    accepted = list(range(len(writes)))
                db.execute("ROLLBACK TO versions" if accepted is None else "RELEASE versions")
            if accepted is None:
                accepted = self._check(writes, conflicts)
                db.executemany(_UPDATE_TASK, [updates[n] for n in accepted])
            event_rows: list[tuple[Any, ...]] = []
            leaves: list[tuple[int, type[Event], bytes]] = []
            event_objs: list[Event] = []
            outbox: list[tuple[str, str, str]] = []
            done: list[tuple[str]] = []
            receipts: list[tuple[str, str]] = []
            for n in accepted:
                w = writes[n]
                task_id, task_seq = w.task_id, w.expected_version
                for e, (at, body, raw, (ref, key, when)) in zip(w.events, bodies[n], strict=True):
                    task_seq += 1
                    event_rows.append((task_id, task_seq, e.TYPE, at, body, ref, key, when))
                    leaves.append((task_seq, type(e), raw))
                event_objs.extend(w.events)
                outbox.extend((o.dispatch_id, o.task_id, o.channel) for o in w.outbox)
                done.extend((d,) for d in w.outbox_done)
                receipts.extend((k, task_id) for k in w.receipt_keys)
            if outbox:
                db.executemany("INSERT INTO outbox (dispatch_id, task_id, channel) VALUES (?, ?, ?)", outbox)
            if done:
                db.executemany("UPDATE outbox SET done = 1 WHERE dispatch_id = ?", done)
            if receipts:
                db.executemany("INSERT OR IGNORE INTO receipts (dedupe_key, task_id) VALUES (?, ?)", receipts)
            stored = self._insert_events(event_rows)
            staged = self.evidence.stage(stored[0][0], leaves) if self.evidence is not None and stored else None
            db.execute("COMMIT")
            self.transactions += 1
            if staged is not None and self.evidence is not None:
                self.evidence.accept(staged)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for w in writes:
            if w.release or w.task_id in conflicts:
                self._leases.pop(w.task_id, None)
        result = (
            tuple(StoredEvent(seq=s, task_seq=t, event=e) for (s, t), e in zip(stored, event_objs, strict=True))
            if returning
            else ()
        )
        return CommitResult(stored=result, conflicts=frozenset(conflicts))

    def _check(self, writes: Sequence[TaskWrite], conflicts: set[str]) -> list[int]:
        """The writes that may go in (by index): a task moved on since it was read is a conflict; a second
        write of one task follows on from the first."""
        versions = self._versions([w.task_id for w in writes])
        accepted: list[int] = []
        for n, w in enumerate(writes):
            if versions.get(w.task_id) != w.expected_version:
                conflicts.add(w.task_id)
            else:
                accepted.append(n)
                versions[w.task_id] = w.expected_version + len(w.events)
        return accepted

    def _backfill_evidence(self) -> None:
        """Give leaves to events committed while the evidence log was off (or before it existed)."""
        assert self.evidence is not None
        events = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        if self.evidence.size >= events:
            return
        self._begin()
        try:
            rows = self._db.execute(
                "SELECT seq, task_seq, body FROM events WHERE seq > ? ORDER BY seq", (self.evidence.size,)
            ).fetchall()
            first = rows[0][0]
            # leaves from the events as decoded, encoded canonically (bodies written before sorted keys included)
            leaves = [(task_seq, type(e), encode_event(e)[1]) for e, task_seq in _decoded(rows)]
            staged = self.evidence.stage(first, leaves)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.evidence.accept(staged)

    def record_anchors(self, receipts: Sequence[AnchorReceipt]) -> None:
        """Keep notaries' receipts for anchored checkpoints (a repeated receipt is kept once)."""
        self._begin()
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO evidence_anchors (size, notary, receipt, anchored_at) VALUES (?, ?, ?, ?)",
                [(r.size, r.notary, r.receipt, r.anchored_at.isoformat()) for r in receipts],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def record_refusals(self, refusals: Sequence[RefusedReceipt]) -> None:
        """Count receipts the engine refused (see :class:`~delivery_sdk.store.RefusedReceipt`)."""
        if not refusals:
            return
        self._begin()
        try:
            self._db.executemany(
                "INSERT INTO refused_receipts (day, source, reason, count, first_at, last_at, dispatch_id, detail) "
                "VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6) ON CONFLICT (day, source, reason) DO UPDATE SET "
                "count = count + 1, last_at = excluded.last_at, dispatch_id = excluded.dispatch_id, "
                "detail = excluded.detail",
                refusal_rows(refusals),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def refusals(self) -> list[RefusalCount]:
        """The refused receipts, counted per UTC day, source and reason (oldest day first)."""
        return [
            RefusalCount(
                day=day,
                source=source,
                reason=reason,
                count=int(count),
                first_at=datetime.fromisoformat(first),
                last_at=datetime.fromisoformat(last),
                dispatch_id=dispatch_id,
                detail=detail,
            )
            for day, source, reason, count, first, last, dispatch_id, detail in self._db.execute(
                "SELECT day, source, reason, count, first_at, last_at, dispatch_id, detail FROM refused_receipts "
                "ORDER BY day, source, reason"
            )
        ]

    def anchors(self) -> list[AnchorReceipt]:
        """Every stored notary anchor receipt, by tree size and notary."""
        return [
            AnchorReceipt(size=size, notary=notary, receipt=receipt, anchored_at=datetime.fromisoformat(at))
            for size, notary, receipt, at in self._db.execute(
                "SELECT size, notary, receipt, anchored_at FROM evidence_anchors ORDER BY size, notary"
            )
        ]

    def proof_bundle(self, task_id: str) -> dict[str, Any] | None:
        """The task's events with inclusion proofs against the first signed checkpoint covering them, or
        None when there is no evidence log or no such checkpoint yet."""
        if self.evidence is None:
            return None
        from ..evidence.audit import bundle_from

        try:
            return bundle_from(self._db, task_id)
        except LookupError:
            return None

    def checkpoint(
        self,
        origin: str,
        signers: Sequence[Signer],
        now: datetime,
        *,
        extends: Checkpoint | None = None,
        extends_from: str | None = None,
    ) -> str | None:
        """Sign and keep a checkpoint of the evidence log; None when there is nothing new to sign.

        Raises :class:`~delivery_sdk.EvidenceForkError` (nothing signed) when the log does not extend its
        latest stored checkpoint, or ``extends`` (the engine's witness, from the file ``extends_from``)."""
        if self.evidence is None or not signers:
            return None
        self._begin()
        try:
            note = self.evidence.checkpoint(origin, signers, now, extends=extends, extends_from=extends_from)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return note

    def _client_keys(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, task_id, fingerprint in self._db.execute(
                f"SELECT client_key, task_id, fingerprint FROM tasks WHERE client_key IN ({marks})", chunk
            ):
                found[key] = (task_id, fingerprint)
        return found

    def _versions(self, task_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(task_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT task_id, version FROM tasks WHERE task_id IN ({marks})", chunk))
        return found

    def _receipt_seen(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM receipts WHERE dedupe_key = ?", (key,)).fetchone() is not None

    # -- claiming ----------------------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[tuple[str, int]]:
        """Lease up to ``limit`` unleased tasks due at ``now``; returns ``(task_id, version)`` pairs."""
        now_ts = now.timestamp()
        leases = self._leases
        for task_id in [t for t, until in leases.items() if until <= now_ts]:
            del leases[task_id]
        rows = self._db.execute(
            "SELECT task_id, version FROM tasks WHERE due_at <= ? ORDER BY due_at LIMIT ?",
            (now_ts, limit + len(leases)),
        ).fetchall()
        until = lease_until.timestamp()
        claimed: list[tuple[str, int]] = []
        for task_id, version in rows:
            if task_id in leases:
                continue
            leases[task_id] = until
            claimed.append((task_id, version))
            if len(claimed) >= limit:
                break
        return claimed

    def release(self, task_ids: Sequence[str]) -> None:
        """End the leases of tasks the engine will not write after all."""
        for task_id in task_ids:
            self._leases.pop(task_id, None)

    # -- reading -----------------------------------------------------------------------------------

    def load_events(self, task_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Every event of each task, in order (a task with no events is absent from the result)."""
        out: dict[str, list[StoredEvent]] = {}
        ids = list(task_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for task_id, seq, task_seq, body in self._db.execute(
                f"SELECT task_id, seq, task_seq, body FROM events WHERE task_id IN ({marks}) "
                "ORDER BY task_id, task_seq",
                chunk,
            ):
                out.setdefault(task_id, []).append(
                    StoredEvent(seq=seq, task_seq=task_seq, event=event_from_dict(loads(body)))
                )
        return out

    def _row(self, values: tuple[Any, ...]) -> TaskRow:
        return TaskRow(
            task_id=values[0],
            case_key=values[1],
            client_key=values[2],
            state=values[3],
            version=values[4],
            due_at=_from_ts(values[5]),
            created_at=datetime.fromisoformat(values[6]),
            updated_at=datetime.fromisoformat(values[7]),
            court=values[8],
        )

    _ROW = "task_id, case_key, client_key, state, version, due_at, created_at, updated_at, court"

    def task_row(self, task_id: str) -> TaskRow:
        """The scheduling row of a task; raises :class:`~delivery_sdk.UnknownTask`."""
        values = self._db.execute(f"SELECT {self._ROW} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if values is None:
            raise UnknownTask(task_id)
        return self._row(values)

    def tasks_of_case(self, case_key: str) -> list[TaskRow]:
        """The scheduling rows of a case's tasks, in creation order."""
        return [
            self._row(v)
            for v in self._db.execute(
                f"SELECT {self._ROW} FROM tasks WHERE case_key = ? ORDER BY created_at, task_id", (case_key,)
            )
        ]

    def dispatch_task(self, dispatch_id: str) -> str | None:
        """The task a dispatch belongs to, or None if no such dispatch was ever queued."""
        row = self._db.execute("SELECT task_id FROM outbox WHERE dispatch_id = ?", (dispatch_id,)).fetchone()
        return None if row is None else str(row[0])

    def receipt_seen(self, key: str) -> bool:
        """True when a receipt with this deduplication key was recorded."""
        return self._receipt_seen(key)

    def pending_outbox(self) -> list[OutboxEntry]:
        """Dispatches whose intent is committed but whose send result is not (in doubt after a crash)."""
        return [
            OutboxEntry(dispatch_id=d, task_id=t, channel=c)
            for d, t, c in self._db.execute("SELECT dispatch_id, task_id, channel FROM outbox WHERE done = 0")
        ]

    def next_due_at(self, now: datetime | None = None) -> datetime | None:
        """The earliest moment a task becomes claimable: its due time, or for a due task that another owner holds a
        lease on (at ``now``, default the wall clock), the end of that lease; None when no task waits for time. An
        idle worker sleeps until then, so it never spins on another worker's leased tasks."""
        leases = self._leases  # this process's own (one engine per SQLite store); an idle engine holds none
        if not leases:
            value = self._db.execute("SELECT MIN(due_at) FROM tasks WHERE due_at IS NOT NULL").fetchone()[0]
            return _from_ts(value)
        now_ts = (now or datetime.now(UTC)).timestamp()
        # the earliest tasks by due time, enough of them to get past every leased one
        rows = self._db.execute(
            "SELECT task_id, due_at FROM tasks WHERE due_at IS NOT NULL ORDER BY due_at LIMIT ?", (len(leases) + 1,)
        ).fetchall()
        moments = [max(due, leases[task_id]) if leases.get(task_id, 0.0) > now_ts else due for task_id, due in rows]
        return _from_ts(min(moments)) if moments else None

    def count_by_state(self, *, courts: Sequence[str] | None = None) -> dict[str, int]:
        """How many tasks are in each state, by state name; with ``courts`` (court codes), only the tasks of
        those courts and the courts under them (``鄂01`` covers ``鄂0106``)."""
        if courts is None:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state"))
        if not courts:
            return {}
        where = " OR ".join("(court >= ? AND court < ?)" for _ in courts)
        params = [bound for code in courts for bound in (code, code + "\uffff")]
        return dict(self._db.execute(f"SELECT state, COUNT(*) FROM tasks WHERE {where} GROUP BY state", params))

    # -- the access log (delivery_sdk.access) --------------------------------------------------------

    def record_access(self, records: Sequence[AccessRecord]) -> None:
        """Append ``records`` to the access log, each chained to the one before, in one transaction.

        A store opened read-only appends through a connection of its own that writes the access log and
        nothing else: a reader's reads are recorded all the same (``docs/access.md``)."""
        if not records:
            return
        db = self._db
        own = None
        if self.readonly:
            try:
                own = db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA busy_timeout=10000")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot record the access in {self.path!r} ({exc}): a read of personal data is shown only once "
                    "it is recorded; read from a copy you may write, or ask for the store to be writable"
                ) from exc
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT seq, chain FROM access_log ORDER BY seq DESC LIMIT 1").fetchone()
                seq, previous = (0, ACCESS_CHAIN_START) if row is None else (int(row[0]), bytes(row[1]))
                rows = []
                for record in records:
                    seq += 1
                    previous = chain_hash(previous, record)
                    rows.append(
                        (
                            seq,
                            record.at.astimezone(UTC).isoformat(timespec="microseconds"),
                            record.staff_id,
                            record.role,
                            record.task_id,
                            record.court,
                            record.what,
                            previous,
                        )
                    )
                db.executemany("INSERT INTO access_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot record the access in {self.path!r} ({exc}): a read of personal data is shown only once it "
                "is recorded"
            ) from exc
        finally:
            if own is not None:
                own.close()

    def access_records(self, *, task_id: str | None = None, staff_id: str | None = None) -> list[AccessRecord]:
        """The access log in order, or the records of one task or one staff member."""
        where, params = [], []
        if task_id is not None:
            where.append("task_id = ?")
            params.append(task_id)
        if staff_id is not None:
            where.append("staff_id = ?")
            params.append(staff_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [
            AccessRecord(
                seq=r[0],
                at=datetime.fromisoformat(r[1]),
                staff_id=r[2],
                role=r[3],
                task_id=r[4],
                court=r[5],
                what=r[6],
                chain=bytes(r[7]),
            )
            for r in self._db.execute(
                f"SELECT seq, at, staff_id, role, task_id, court, what, chain FROM access_log{clause} ORDER BY seq",
                params,
            )
        ]

    def latest_event_time(self) -> datetime | None:
        """When the last task changed, or None for an empty store."""
        row = self._db.execute("SELECT MAX(updated_at) FROM tasks").fetchone()
        return None if row[0] is None else datetime.fromisoformat(row[0])

    def events_after(self, seq: int, limit: int, *, types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Committed events with ``seq`` greater than the given one, in order (for sinks and statistics)."""
        params: list[int | str]
        if types is None:
            query, params = "SELECT seq, task_seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit]
        else:
            marks = ", ".join("?" * len(types))
            query = f"SELECT seq, task_seq, body FROM events WHERE seq > ? AND type IN ({marks}) ORDER BY seq LIMIT ?"
            params = [seq, *types, limit]
        return [
            StoredEvent(seq=s, task_seq=ts, event=event_from_dict(loads(body)))
            for s, ts, body in self._db.execute(query, params)
        ]

    def case_keys(self, case_number: str) -> list[str]:
        """Every case key (court|number) with this case number."""
        return [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT case_key FROM tasks WHERE substr(case_key, instr(case_key, '|') + 1) = ?",
                (case_number,),
            )
        ]

    def count_events(self) -> int:
        """The number of events stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def all_task_ids(self) -> list[str]:
        """Every task id, in creation order."""
        return [r[0] for r in self._db.execute("SELECT task_id FROM tasks ORDER BY created_at, task_id")]

    def capabilities(self) -> StoreCapabilities:
        """The optional features of this store (see :class:`~delivery_sdk.store.StoreCapabilities`)."""
        return StoreCapabilities(evidence=self, refusals=self, engine_lock=self, access=self)

    def close(self) -> None:
        """Close the database and release the file's lock; closing twice is harmless."""
        try:
            self._db.close()
        finally:
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_store_path(directory: str | os.PathLike[str] = ".") -> Path:
    """A fresh file name in ``directory`` for the demo's store, stamped with the UTC time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(directory) / f"delivery-demo-{stamp}.sqlite3"
