"""The PostgreSQL store: any number of engine processes (workers, on any number of machines) on one database.

Same contract as :class:`~delivery_sdk.store.SQLiteStore` (see :mod:`delivery_sdk.store._base`), with what
many workers need on top:

- **Leases in the table.** :meth:`PostgresStore.claim_due` leases due tasks with one
  ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)``: ``lease_owner`` (this store's :attr:`owner`)
  and ``lease_until`` (the engine's clock). A lease that has run out is simply claimable again, so the tasks
  of a worker that died return to the pool by themselves. :meth:`release` and ``commit(release=True)`` end a
  lease; only its owner can end it.
- **Fenced writes.** A write to a task this store leased is accepted only while the lease is still this
  store's: a worker whose lease ran out and was taken over gets a conflict (like a version conflict, and the
  lease is forgotten), never a second write on top of another worker's. Writes to tasks it never leased (an
  ingest, a cancel) are checked on the version alone, as on SQLite.
- **One transaction per commit** (group commit): the task rows are locked in ``task_id`` order, the new
  rows go in with ``COPY`` (measured faster than pipelined ``executemany``; see
  ``benchmarks/bench_pg_store.py``), and the event log is appended last, under a lock on the one-row
  ``log_head`` table. Event ``seq`` numbers are therefore dense (1, 2, 3... with no gaps, whatever the
  number of writers) and committed in order, so :meth:`events_after` never skips an event.
- **The evidence log** (RFC 9162 tree over every event, :mod:`delivery_sdk.evidence`) is written in the
  same transaction: the leaves and perfect-subtree nodes (``evidence_nodes``, the same layout as SQLite's),
  and the tree's right edge kept in ``log_head`` beside the event count. The tree is the one SQLite would
  build over the same events; :func:`delivery_sdk.evidence.audit.verify_store` and
  :func:`~delivery_sdk.evidence.audit.export_bundle` take a DSN as well as a path.
- **Schema and migrations.** Everything lives in one PostgreSQL schema (``delivery_sdk`` unless told
  otherwise: the ``schema`` argument, or ``?schema=NAME`` in the DSN), created if missing. Its version is in
  ``schema_version``; opening a store applies the missing migrations under an advisory lock (one worker
  migrates, the others wait) and refuses a schema written by a newer SDK (:class:`SchemaVersionError`).
- **A connection pool** (psycopg_pool): connections are checked before use, so after a database restart the
  next call works again (the call in flight fails with :class:`StoreError`).

The DSN is the ``dsn`` argument or, without one, the ``DELIVERY_SDK_STORE`` environment variable. Errors
name it with its password masked.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from .._exceptions import IdempotencyConflict, NotAStore, SchemaVersionError, StoreError, UnknownTask
from ..access import ACCESS_CHAIN_START, AccessRecord, chain_hash
from ..events import Event, StoredEvent, TaskCreated
from ..evidence.canonical import body_leaf_hash, body_leaf_state
from ..evidence.checkpoint import sign_checkpoint
from ..evidence.keys import Signer
from ..evidence.log import check_signing, stored_nodes
from ..evidence.merkle import CompactRange, Node, NodeKey, consistency_proof, inclusion_proof, root
from ..evidence.verify import HASH_SIZE, Checkpoint, ConsistencyProof, InclusionProof
from ..records import AnchorReceipt
from ..serialization import encode_event, event_from_dict, loads
from . import STORE_ENV, is_dsn
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

if TYPE_CHECKING:
    from psycopg.cursor import Cursor

__all__ = [
    "DEFAULT_SCHEMA",
    "MIGRATIONS",
    "STORE_ENV",
    "PostgresEvidence",
    "PostgresNodes",
    "PostgresStore",
    "is_dsn",
    "mask_dsn",
]

DEFAULT_SCHEMA = "delivery_sdk"

MIGRATIONS: tuple[str, ...] = (
    # 1: the whole schema of SQLite's migrations 1, 3 and 4 (without SQLite's supervision columns), plus the
    # leases in the task rows and the log head (event count, evidence size and the tree's right edge).
    """
    CREATE TABLE tasks (
        task_id     TEXT PRIMARY KEY,
        client_key  TEXT UNIQUE,
        fingerprint TEXT NOT NULL,
        case_key    TEXT NOT NULL,
        state       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        due_at      TIMESTAMPTZ,
        created_at  TIMESTAMPTZ NOT NULL,
        updated_at  TIMESTAMPTZ NOT NULL,
        lease_owner TEXT,
        lease_until TIMESTAMPTZ
    );
    CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX tasks_case ON tasks (case_key);
    CREATE INDEX tasks_created ON tasks (created_at);
    CREATE TABLE events (
        seq      BIGINT PRIMARY KEY,
        task_id  TEXT NOT NULL,
        task_seq INTEGER NOT NULL,
        type     TEXT NOT NULL,
        at       TIMESTAMPTZ NOT NULL,
        body     TEXT NOT NULL,
        UNIQUE (task_id, task_seq)
    );
    CREATE TABLE outbox (
        dispatch_id TEXT PRIMARY KEY,
        task_id     TEXT NOT NULL,
        channel     TEXT NOT NULL,
        done        BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX outbox_pending ON outbox (dispatch_id) WHERE NOT done;
    CREATE TABLE receipts (
        dedupe_key TEXT PRIMARY KEY,
        task_id    TEXT NOT NULL
    );
    CREATE TABLE log_head (
        id     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        seq    BIGINT NOT NULL,
        leaves BIGINT NOT NULL,
        edge   BYTEA NOT NULL
    );
    INSERT INTO log_head (seq, leaves, edge) VALUES (0, 0, ''::bytea);
    CREATE TABLE evidence_nodes (
        level INTEGER NOT NULL,
        idx   BIGINT NOT NULL,
        hash  BYTEA NOT NULL,
        PRIMARY KEY (level, idx)
    );
    CREATE TABLE evidence_checkpoints (
        size       BIGINT PRIMARY KEY,
        note       TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE evidence_anchors (
        size        BIGINT NOT NULL,
        notary      TEXT NOT NULL,
        receipt     TEXT NOT NULL,
        anchored_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (size, notary)
    );
    """,
    # 2: receipts the engine refused (SQLite's migration 6): counts per UTC day, source and reason.
    """
    CREATE TABLE refused_receipts (
        day         TEXT NOT NULL,
        source      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        count       BIGINT NOT NULL,
        first_at    TIMESTAMPTZ NOT NULL,
        last_at     TIMESTAMPTZ NOT NULL,
        dispatch_id TEXT NOT NULL,
        detail      TEXT NOT NULL,
        PRIMARY KEY (day, source, reason)
    );
    """,
    # 3: one centre, many courts (SQLite's migration 7): every task's court code, read from its case number as
    # delivery_sdk.access.court_code reads it ('' where it carries none), indexed; the access log, each
    # record chained to the one before; and row-level security by court for deployments where each court
    # connects with a role of its own (docs/operations.md): court_roles says which role reads which courts.
    # The store's owner (the centre, which migrates) is not subject to the policies: the engine pays nothing.
    r"""
    ALTER TABLE tasks ADD COLUMN court TEXT NOT NULL DEFAULT '';
    UPDATE tasks SET court = COALESCE(substring(btrim(split_part(case_key, '|', 2))
        from '^[(（][0-9]{4}[)）]([㐀-鿿](?:[0-9]{2}){0,2})(?![0-9])'), '');
    CREATE INDEX tasks_court ON tasks (court);
    CREATE TABLE access_log (
        seq      BIGINT PRIMARY KEY,
        at       TIMESTAMPTZ NOT NULL,
        staff_id TEXT NOT NULL,
        role     TEXT NOT NULL,
        task_id  TEXT NOT NULL,
        court    TEXT NOT NULL,
        what     TEXT NOT NULL,
        chain    BYTEA NOT NULL
    );
    CREATE INDEX access_task ON access_log (task_id);
    CREATE INDEX access_staff ON access_log (staff_id);
    CREATE TABLE court_roles (
        role_name TEXT NOT NULL,
        court     TEXT NOT NULL,
        PRIMARY KEY (role_name, court)
    );
    ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tasks_by_court ON tasks
        USING (court IN (SELECT c.court FROM court_roles c WHERE c.role_name = current_user));
    ALTER TABLE events ENABLE ROW LEVEL SECURITY;
    CREATE POLICY events_by_court ON events USING (task_id IN (SELECT t.task_id FROM tasks t));
    ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
    CREATE POLICY outbox_by_court ON outbox USING (task_id IN (SELECT t.task_id FROM tasks t));
    ALTER TABLE court_roles ENABLE ROW LEVEL SECURITY;
    CREATE POLICY court_roles_own ON court_roles USING (role_name = current_user);
    ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
    CREATE POLICY access_by_court ON access_log
        USING (court IN (SELECT c.court FROM court_roles c WHERE c.role_name = current_user));
    """,
)

_EVENT_TYPES = ["int8", "text", "int4", "text", "timestamptz", "text"]
_TASK_TYPES = ["text", "text", "text", "text", "text", "text", "int4", "timestamptz", "timestamptz", "timestamptz"]


# -- DSNs ------------------------------------------------------------------------------------------------


_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """The DSN with its password (in the URL or as a parameter) replaced by ``***``, fit for messages and logs."""
    if not is_dsn(dsn):
        return _PASSWORD_KV.sub(r"\1***", dsn)
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hosts}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}={v}" for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _split_schema(dsn: str) -> tuple[str, str | None]:
    """``(dsn without ?schema=..., the schema or None)``; libpq does not know the parameter."""
    if not is_dsn(dsn):
        return dsn, None
    parts = urlsplit(dsn)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in params if k == "schema"]
    rest = [(k, v) for k, v in params if k != "schema"]
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return clean, (schemas[-1] if schemas else None)


# -- the evidence log's nodes ----------------------------------------------------------------------------


class PostgresNodes:
    """The :class:`~delivery_sdk.evidence.merkle.NodeStore` over the ``evidence_nodes`` table, on one cursor.

    The counterpart of :class:`delivery_sdk.evidence.log.SQLiteNodes`: the same table layout, read with one
    array join, written with ``COPY``. Wrap it in :func:`delivery_sdk.evidence.log.stored_nodes` (the levels
    between the leaves and ``DENSE_FROM`` are not stored but recomputed).
    """

    def __init__(self, cursor: Cursor[Any]) -> None:
        self._cur = cursor

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        if not keys:
            return []
        self._cur.execute(
            "SELECT n.level, n.idx, n.hash FROM evidence_nodes n "
            "JOIN unnest(%s::int[], %s::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        found = {(int(level), int(idx)): bytes(digest) for level, idx, digest in self._cur.fetchall()}
        missing = [key for key in keys if key not in found]
        if missing:
            raise LookupError(f"the evidence log lacks tree nodes {missing[:3]}: the store is incomplete")
        return [found[key] for key in keys]

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        with self._cur.copy("COPY evidence_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int8", "bytea"])
            for node in nodes:
                copy.write_row(node)

    def leaf_count(self) -> int:
        """How many leaves (events) the stored tree has."""
        self._cur.execute("SELECT leaves FROM log_head")
        row = self._cur.fetchone()
        return 0 if row is None else int(row[0])


def _edge(leaves: int, edge: bytes) -> CompactRange:
    data = bytes(edge)
    return CompactRange(leaves, [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])


class PostgresEvidence:
    """Reading the evidence log of a :class:`PostgresStore` (what ``SQLiteStore.evidence`` offers)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    @property
    def size(self) -> int:
        """The number of events in the committed tree."""
        with self._store._read() as cur:
            return PostgresNodes(cur).leaf_count()

    def root(self, size: int | None = None) -> bytes:
        """The tree's root hash at ``size`` (default: the current size)."""
        with self._store._read() as cur:
            if size is None:
                cur.execute("SELECT leaves, edge FROM log_head")
                leaves, edge = cur.fetchone() or (0, b"")
                return _edge(int(leaves), edge).root()
            return root(stored_nodes(PostgresNodes(cur)), size)

    def inclusion_proof(self, seq: int, tree_size: int) -> InclusionProof:
        """The proof that event ``seq`` (1-based) is in the tree of ``tree_size`` leaves."""
        with self._store._read() as cur:
            return inclusion_proof(stored_nodes(PostgresNodes(cur)), seq - 1, tree_size)

    def consistency_proof(self, size1: int, size2: int) -> ConsistencyProof:
        """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2``."""
        with self._store._read() as cur:
            return consistency_proof(stored_nodes(PostgresNodes(cur)), size1, size2)

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored checkpoint as ``(tree size, signed note)``, smallest first."""
        with self._store._read() as cur:
            cur.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size")
            return [(int(s), str(n)) for s, n in cur.fetchall()]


# -- the store ---------------------------------------------------------------------------------------------


def _serialise(event: Event) -> tuple[str, bytes]:
    """An event's stored body (keys sorted: :func:`~delivery_sdk.serialization.event_body`), as text and
    as the bytes its evidence leaf hashes."""
    body = encode_event(event)[1]
    return body.decode(), body


class _Leaf:
    """A leaf hash started before its ``seq`` is known, finished under the log head's lock.

    The canonical leaf input (v1, :mod:`delivery_sdk.evidence.canonical`) is the event's canonical body in
    the frame ``{"event":`` ... ``,"seq":S,"task_seq":T}``, so SHA-256 runs over everything but that tail
    before the lock; :meth:`finish` adds the tail. An event class that can hold a float is encoded by the
    reference encoder once its ``seq`` is known.
    """

    __slots__ = ("_body", "_cls", "_state", "_task_seq")

    def __init__(self, cls: type[Event], task_seq: int, body: bytes) -> None:
        self._cls, self._task_seq, self._body = cls, task_seq, body
        self._state = body_leaf_state(cls, task_seq, body)

    def finish(self, seq: int) -> bytes:
        if self._state is None:
            return body_leaf_hash(self._cls, seq, self._task_seq, self._body)
        state = self._state.copy()
        state.update(b',"seq":%d,"task_seq":%d}' % (seq, self._task_seq))
        digest: bytes = state.digest()
        return digest


class PostgresStore:
    """A :class:`~delivery_sdk.store.TaskStore` on PostgreSQL (psycopg 3 and a psycopg_pool connection pool).

    ``dsn`` is a libpq connection string or ``postgresql://`` URL (``None``: ``$DELIVERY_SDK_STORE``);
    ``schema`` the PostgreSQL schema that holds the tables (default ``?schema=`` of the DSN, else
    ``delivery_sdk``). ``pool_size`` bounds the connections this store opens (an engine uses one at a time;
    more serve threads that ingest meanwhile). ``connect_timeout`` (seconds) bounds the wait for a
    connection, at open and on every call. ``owner`` names this store's leases (default: host, pid and a
    random suffix; a worker sets its worker id).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str | None = None,
        evidence: bool = True,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        owner: str | None = None,
        environ: Mapping[str, str] | None = None,
        readonly: bool = False,
    ) -> None:
        if dsn is None:
            dsn = (os.environ if environ is None else environ).get(STORE_ENV)
            if not dsn:
                raise StoreError(f"no PostgreSQL DSN: pass one or set {STORE_ENV}=postgresql://user@host/database")
        if pool_size < 1:
            raise StoreError("pool_size is at least 1")
        conninfo, dsn_schema = _split_schema(dsn)
        self.schema = schema or dsn_schema or DEFAULT_SCHEMA
        self.label = mask_dsn(dsn)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.transactions = 0  # write transactions committed through this object (for benchmarks)
        self._evidence_on = evidence
        self._held: set[str] = set()  # tasks this store leased and has not released
        self._closed = False
        self._conninfo = conninfo
        self._timeout = connect_timeout
        self._set_session = sql.SQL("SET search_path TO {}; SET TIME ZONE 'UTC'").format(sql.Identifier(self.schema))
        self.readonly = readonly
        if readonly:
            self._check_schema()
        else:
            self._migrate()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs=self._connect_kwargs(),
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=connect_timeout,
            name=f"delivery-sdk:{self.schema}",
            num_workers=1,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot open a connection pool to PostgreSQL at {self.label}: {exc}") from exc
        self.evidence: PostgresEvidence | None = PostgresEvidence(self) if evidence else None
        if evidence and not readonly:  # a reader leaves uncovered events to `verify`, which counts them
            try:
                self._backfill_evidence()
            except BaseException:
                self.close()
                raise

    # -- connections -------------------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, round(self._timeout))}
        if "application_name" not in conninfo_to_dict(self._conninfo):
            # pg_stat_activity then shows which connections are this store's (unless the DSN names them)
            kwargs["application_name"] = f"delivery-sdk:{self.schema}"[:63]
        if self.readonly:
            # the server itself refuses any write on these connections, whatever a caller tries
            kwargs["options"] = "-c default_transaction_read_only=on"
        return kwargs

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(self._set_session)

    def _error(self, what: str, exc: BaseException) -> StoreError:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout):
            return StoreError(f"{what}: lost the connection to PostgreSQL at {self.label} ({exc}); retry later")
        return StoreError(f"{what}: {exc}")

    @contextmanager
    def _tx(self, what: str) -> Iterator[Cursor[Any]]:
        """One write transaction on a pooled connection; psycopg errors become :class:`StoreError`."""
        if self._closed:
            raise StoreError(f"{what}: the store is closed")
        if self.readonly:
            raise StoreError(f"{what}: the store {self.label} was opened read-only; open it without readonly=True")
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(what, exc) from exc
        self.transactions += 1

    @contextmanager
    def _read(self, what: str = "cannot read the store") -> Iterator[Cursor[Any]]:
        if self._closed:
            raise StoreError(f"{what}: the store is closed")
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(what, exc) from exc

    # -- schema ------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            conn = psycopg.connect(self._conninfo, **self._connect_kwargs())
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.label}: {str(exc).strip()}") from exc
        try:
            with conn.transaction():
                # one opener migrates at a time; the others wait here, then find the schema current
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"delivery-sdk:{self.schema}",))
                exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.schema)))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                version = 0 if row is None else int(row[0])
                if version > len(MIGRATIONS):
                    raise SchemaVersionError(
                        f"store {self.label} (schema {self.schema!r}) has schema version {version}, newer than "
                        f"this SDK knows ({len(MIGRATIONS)}); upgrade delivery-sdk to open it"
                    )
                for number in range(version, len(MIGRATIONS)):
                    conn.execute(MIGRATIONS[number], prepare=False)
                if row is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS),))
                elif version != len(MIGRATIONS):
                    conn.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate the store {self.label} (schema {self.schema!r}): {exc}") from exc
        finally:
            conn.close()

    def _check_schema(self) -> None:
        """What :meth:`_migrate` is to a writer, for a reader: the schema must be there and current."""
        try:
            conn = psycopg.connect(self._conninfo, **self._connect_kwargs())
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.label}: {str(exc).strip()}") from exc
        try:
            conn.read_only = True
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
            if exists is None:
                raise NotAStore(f"no store at {self.label}: schema {self.schema!r} does not exist; nothing was created")
            found = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version'", (self.schema,)
            ).fetchone()
            if found is None:
                raise NotAStore(f"schema {self.schema!r} at {self.label} holds no delivery-sdk store")
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = 0 if row is None else int(row[0])
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the store {self.label} (schema {self.schema!r}): {exc}") from exc
        finally:
            conn.close()
        if version != len(MIGRATIONS):
            newer = version > len(MIGRATIONS)
            raise SchemaVersionError(
                f"store {self.label} (schema {self.schema!r}) has schema version {version}, "
                + (
                    f"newer than this SDK knows ({len(MIGRATIONS)}); upgrade delivery-sdk to read it"
                    if newer
                    else f"older than this SDK's {len(MIGRATIONS)}: upgrade it once with 'delivery-sdk migrate' "
                    "(that writes), then read it"
                )
            )

    @property
    def schema_version(self) -> int:
        """The schema version of the store's tables."""
        with self._read() as cur:
            cur.execute("SELECT version FROM schema_version")
            row = cur.fetchone()
            return 0 if row is None else int(row[0])

    # -- the event log -----------------------------------------------------------------------------------

    def _append(
        self,
        cur: Cursor[Any],
        items: Sequence[tuple[str, int, Event, str, bytes]],
        leaves_of: Sequence[_Leaf] | None = None,
    ) -> list[tuple[int, int]]:
        """Append events ``(task_id, task_seq, event, body, body bytes)`` at the end of the log (and of the evidence
        tree); returns their ``(seq, task_seq)``. Takes the log head's lock: call it last in a transaction.
        ``leaves_of`` are the items' leaves, started before the transaction (the lock is then held shorter)."""
        if not items:
            return []
        cur.execute("SELECT seq, leaves, edge FROM log_head FOR UPDATE")
        head = cur.fetchone()
        if head is None:
            raise StoreError(f"the store {self.label} (schema {self.schema!r}) lost its log head row")
        last, leaves, edge = int(head[0]), int(head[1]), bytes(head[2])
        first = last + 1
        with cur.copy("COPY events (seq, task_id, task_seq, type, at, body) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_EVENT_TYPES)
            for i, (task_id, task_seq, event, body, _) in enumerate(items):
                copy.write_row((first + i, task_id, task_seq, event.TYPE, event.at, body))
        if self._evidence_on:
            tree = self._catch_up(cur, leaves, edge, last)
            started = leaves_of if leaves_of is not None else [_Leaf(type(e), t, raw) for _, t, e, _, raw in items]
            hashes = [leaf.finish(first + i) for i, leaf in enumerate(started)]
            stored_nodes(PostgresNodes(cur)).put_nodes(tree.append_many(hashes))
            leaves, edge = tree.size, b"".join(tree.hashes)
        cur.execute(
            "UPDATE log_head SET seq = %s, leaves = %s, edge = %s", (last + len(items), leaves, edge), prepare=True
        )
        return [(first + i, item[1]) for i, item in enumerate(items)]

    def _catch_up(self, cur: Cursor[Any], leaves: int, edge: bytes, events: int) -> CompactRange:
        """The tree over the first ``events`` events: leaves for events written while the evidence log was
        off (by this store or another one) are added first, under the log head's lock."""
        tree = _edge(leaves, edge)
        if leaves < events:
            cur.execute(
                "SELECT seq, task_seq, body FROM events WHERE seq > %s AND seq <= %s ORDER BY seq", (leaves, events)
            )
            hashes = []
            for seq, task_seq, body in cur.fetchall():
                # encoded again from the decoded event: bodies written before sorted keys hash the same
                event = event_from_dict(loads(body))
                hashes.append(body_leaf_hash(type(event), seq, task_seq, encode_event(event)[1]))
            stored_nodes(PostgresNodes(cur)).put_nodes(tree.append_many(hashes))
        return tree

    def _backfill_evidence(self) -> None:
        """Give leaves to events committed while the evidence log was off (or before it existed)."""
        with self._read() as cur:
            cur.execute("SELECT seq, leaves FROM log_head")
            row = cur.fetchone()
        if row is None or row[1] >= row[0]:
            return
        with self._tx("cannot backfill the evidence log") as cur:
            cur.execute("SELECT seq, leaves, edge FROM log_head FOR UPDATE")
            last, leaves, edge = cur.fetchone() or (0, 0, b"")
            tree = self._catch_up(cur, int(leaves), bytes(edge), int(last))
            cur.execute("UPDATE log_head SET leaves = %s, edge = %s", (tree.size, b"".join(tree.hashes)))

    # -- writing -----------------------------------------------------------------------------------------

    def create_tasks(self, tasks: Sequence[NewTask]) -> CreateResult:
        """Insert new tasks with their ``task.created`` events, atomically."""
        evidence = self._evidence_on
        serialised = [(new.body.decode(), new.body) if new.body else _serialise(new.created) for new in tasks]
        keys = [n.client_key for n in tasks if n.client_key is not None]
        leaves = [_Leaf(TaskCreated, 1, raw) for _, raw in serialised] if evidence else None
        for attempt in range(3):
            try:
                return self._create(tasks, serialised, keys, leaves)
            except StoreError as exc:
                cause = exc.__cause__
                if not isinstance(cause, psycopg.errors.UniqueViolation):
                    raise
                concurrent = (
                    cause.diag.constraint_name == "tasks_client_key_key" and len(keys) == len(set(keys)) and attempt < 2
                )
                if not concurrent:
                    raise StoreError(
                        f"cannot create tasks: {cause.diag.message_primary} ({cause.diag.message_detail}) "
                        "(a client key repeated within one submission?)"
                    ) from cause
                # another client created a task with one of these keys meanwhile: look again
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(
        self,
        tasks: Sequence[NewTask],
        serialised: Sequence[tuple[str, bytes]],
        keys: list[str],
        leaves: list[_Leaf] | None,
    ) -> CreateResult:
        ids: list[str] = []
        new_leaves: list[_Leaf] = []
        created: list[bool] = []
        rows: list[tuple[Any, ...]] = []
        items: list[tuple[str, int, Event, str, bytes]] = []
        with self._tx("cannot create tasks") as cur:
            existing: dict[str, tuple[str, str]] = {}
            if keys:
                cur.execute("SELECT client_key, task_id, fingerprint FROM tasks WHERE client_key = ANY(%s)", (keys,))
                existing = {key: (task_id, fp) for key, task_id, fp in cur.fetchall()}
            for n, (new, (body, raw)) in enumerate(zip(tasks, serialised, strict=True)):
                found = existing.get(new.client_key) if new.client_key is not None else None
                if found is not None:
                    if found[1] != new.fingerprint:
                        raise IdempotencyConflict(new.client_key or "", found[0])
                    ids.append(found[0])
                    created.append(False)
                    continue
                at = new.created.at
                rows.append(
                    (
                        new.task_id,
                        new.client_key,
                        new.fingerprint,
                        new.case_key,
                        new.court,
                        "created",
                        1,
                        new.due_at,
                        at,
                        at,
                    )
                )
                items.append((new.task_id, 1, new.created, body, raw))
                if leaves is not None:
                    new_leaves.append(leaves[n])
                ids.append(new.task_id)
                created.append(True)
            if rows:
                with cur.copy(
                    "COPY tasks (task_id, client_key, fingerprint, case_key, court, state, version, due_at, "
                    "created_at, updated_at) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_TASK_TYPES)
                    for row in rows:
                        copy.write_row(row)
            stored = self._append(cur, items, new_leaves if leaves is not None else None)
        return CreateResult(
            task_ids=tuple(ids),
            created=tuple(created),
            stored=tuple(
                StoredEvent(seq=s, task_seq=t, event=item[2]) for (s, t), item in zip(stored, items, strict=True)
            ),
        )

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        """Write every non-conflicting ``TaskWrite`` in one transaction."""
        conflicts: set[str] = set()
        # Serialise before the transaction: it holds its locks only for the SQL.
        bodies = {id(w): [_serialise(e) for e in w.events] for w in writes}
        evidence = self._evidence_on
        started = {
            id(w): [
                _Leaf(type(e), w.expected_version + i, raw)
                for i, (e, (_, raw)) in enumerate(zip(w.events, bodies[id(w)], strict=True), 1)
            ]
            for w in writes
            if evidence
        }
        task_ids = sorted({w.task_id for w in writes})
        items: list[tuple[str, int, Event, str, bytes]] = []
        if not writes:
            return CommitResult(stored=(), conflicts=frozenset())
        with self._tx("cannot commit") as cur:
            # lock the task rows in one order (no deadlock between two commits), read versions and leases
            cur.execute(
                "SELECT task_id, version, lease_owner FROM tasks WHERE task_id = ANY(%s) ORDER BY task_id FOR UPDATE",
                (task_ids,),
            )
            found = {task_id: (version, owner) for task_id, version, owner in cur.fetchall()}
            versions = {task_id: v for task_id, (v, _) in found.items()}
            held = self._held
            accepted: list[TaskWrite] = []
            for w in writes:
                if versions.get(w.task_id) != w.expected_version:
                    conflicts.add(w.task_id)
                elif w.task_id in held and found[w.task_id][1] != self.owner:
                    conflicts.add(w.task_id)  # our lease ran out and another worker took the task
                else:
                    accepted.append(w)
                    versions[w.task_id] = w.expected_version + len(w.events)  # a second write of a task follows on
            if accepted:
                cur.executemany(
                    "UPDATE tasks SET state = %s, version = %s, due_at = %s, updated_at = COALESCE(%s, updated_at) "
                    "WHERE task_id = %s AND version = %s",
                    [
                        (
                            w.state,
                            w.expected_version + len(w.events),
                            w.due_at,
                            w.events[-1].at if w.events else None,
                            w.task_id,
                            w.expected_version,
                        )
                        for w in accepted
                    ],
                )
            released = sorted({w.task_id for w in writes if w.release} | conflicts)
            if released:
                cur.execute(
                    "UPDATE tasks SET lease_owner = NULL, lease_until = NULL "
                    "WHERE task_id = ANY(%s) AND lease_owner = %s",
                    (released, self.owner),
                )
            outbox = [(o.dispatch_id, o.task_id, o.channel) for w in accepted for o in w.outbox]
            if outbox:
                with cur.copy("COPY outbox (dispatch_id, task_id, channel) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "text", "text"])
                    for row in outbox:
                        copy.write_row(row)
            done = [d for w in accepted for d in w.outbox_done]
            if done:
                cur.execute("UPDATE outbox SET done = TRUE WHERE dispatch_id = ANY(%s)", (done,))
            receipts = [(k, w.task_id) for w in accepted for k in w.receipt_keys]
            if receipts:
                cur.executemany(
                    "INSERT INTO receipts (dedupe_key, task_id) VALUES (%s, %s) ON CONFLICT (dedupe_key) DO NOTHING",
                    receipts,
                )
            items = [
                (w.task_id, w.expected_version + i, e, body, raw)
                for w in accepted
                for i, (e, (body, raw)) in enumerate(zip(w.events, bodies[id(w)], strict=True), start=1)
            ]
            stored = self._append(cur, items, [leaf for w in accepted for leaf in started[id(w)]] if evidence else None)
        held.difference_update(released)
        result = (
            tuple(StoredEvent(seq=s, task_seq=t, event=item[2]) for (s, t), item in zip(stored, items, strict=True))
            if returning
            else ()
        )
        return CommitResult(stored=result, conflicts=frozenset(conflicts))

    # -- claiming ----------------------------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[tuple[str, int]]:
        """Lease up to ``limit`` unleased tasks due at ``now``; returns ``(task_id, version)`` pairs."""
        with self._tx("cannot claim due tasks") as cur:
            cur.execute(
                "UPDATE tasks t SET lease_owner = %(owner)s, lease_until = %(until)s "
                "FROM (SELECT task_id FROM tasks WHERE due_at <= %(now)s "
                "      AND (lease_until IS NULL OR lease_until <= %(now)s) "
                "      ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due "
                "WHERE t.task_id = due.task_id RETURNING t.task_id, t.version, t.due_at",
                {"owner": self.owner, "until": lease_until, "now": now, "limit": limit},
            )
            rows = cur.fetchall()
        rows.sort(key=lambda r: (r[2], r[0]))
        self._held.update(r[0] for r in rows)
        return [(str(task_id), int(version)) for task_id, version, _ in rows]

    def release(self, task_ids: Sequence[str]) -> None:
        """End the leases of tasks the engine will not write after all."""
        ids = sorted(set(task_ids))
        if not ids:
            return
        with self._tx("cannot release leases") as cur:
            # rows locked in task_id order, as commits lock them (no deadlock with a commit of the same tasks)
            cur.execute(
                "UPDATE tasks t SET lease_owner = NULL, lease_until = NULL FROM (SELECT task_id FROM tasks "
                "WHERE task_id = ANY(%s) AND lease_owner = %s ORDER BY task_id FOR UPDATE) mine "
                "WHERE t.task_id = mine.task_id",
                (ids, self.owner),
            )
        self._held.difference_update(ids)

    # -- the evidence log: checkpoints, anchors, bundles ---------------------------------------------------

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
        if not self._evidence_on or not signers:
            return None
        with self._tx("cannot sign a checkpoint") as cur:
            cur.execute("SELECT seq, leaves, edge FROM log_head FOR UPDATE")
            last, leaves, edge = cur.fetchone() or (0, 0, b"")
            tree = self._catch_up(cur, int(leaves), bytes(edge), int(last))
            if tree.size != int(leaves):
                cur.execute("UPDATE log_head SET leaves = %s, edge = %s", (tree.size, b"".join(tree.hashes)))
            cur.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1")
            row = cur.fetchone()
            size = tree.size
            check_signing(origin, size, tree.root(), stored_nodes(PostgresNodes(cur)), row, extends, extends_from)
            if size == 0 or (row is not None and row[0] >= size):
                return None
            note = sign_checkpoint(Checkpoint(origin=origin, size=size, root=tree.root()), signers)
            cur.execute(
                "INSERT INTO evidence_checkpoints (size, note, created_at) VALUES (%s, %s, %s)", (size, note, now)
            )
        return note

    def record_anchors(self, receipts: Sequence[AnchorReceipt]) -> None:
        """Keep notaries' receipts for anchored checkpoints (a repeated receipt is kept once)."""
        if not receipts:
            return
        with self._tx("cannot record anchor receipts") as cur:
            cur.executemany(
                "INSERT INTO evidence_anchors (size, notary, receipt, anchored_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (size, notary) DO NOTHING",
                [(r.size, r.notary, r.receipt, r.anchored_at) for r in receipts],
            )

    def record_refusals(self, refusals: Sequence[RefusedReceipt]) -> None:
        """Count receipts the engine refused (see :class:`~delivery_sdk.store.RefusedReceipt`)."""
        if not refusals:
            return
        with self._tx("cannot record refused receipts") as cur:
            cur.executemany(
                "INSERT INTO refused_receipts AS r (day, source, reason, count, first_at, last_at, dispatch_id, "
                "detail) VALUES (%(day)s, %(source)s, %(reason)s, 1, %(at)s, %(at)s, %(dispatch_id)s, %(detail)s) "
                "ON CONFLICT (day, source, reason) DO UPDATE SET count = r.count + 1, last_at = excluded.last_at, "
                "dispatch_id = excluded.dispatch_id, detail = excluded.detail",
                [
                    {"day": d, "source": s, "reason": r, "at": refused.at, "dispatch_id": did, "detail": detail}
                    for (d, s, r, _, did, detail), refused in zip(refusal_rows(refusals), refusals, strict=True)
                ],
            )

    def refusals(self) -> list[RefusalCount]:
        """The refused receipts, counted per UTC day, source and reason (oldest day first)."""
        with self._read() as cur:
            cur.execute(
                "SELECT day, source, reason, count, first_at, last_at, dispatch_id, detail FROM refused_receipts "
                "ORDER BY day, source, reason"
            )
            return [
                RefusalCount(
                    day=day,
                    source=source,
                    reason=reason,
                    count=int(count),
                    first_at=first,
                    last_at=last,
                    dispatch_id=dispatch_id,
                    detail=detail,
                )
                for day, source, reason, count, first, last, dispatch_id, detail in cur.fetchall()
            ]

    def anchors(self) -> list[AnchorReceipt]:
        """Every stored notary anchor receipt, by tree size and notary."""
        with self._read() as cur:
            cur.execute("SELECT size, notary, receipt, anchored_at FROM evidence_anchors ORDER BY size, notary")
            return [
                AnchorReceipt(size=int(size), notary=notary, receipt=receipt, anchored_at=at)
                for size, notary, receipt, at in cur.fetchall()
            ]

    def proof_bundle(self, task_id: str) -> dict[str, Any] | None:
        """The task's events with inclusion proofs against the first signed checkpoint covering them, or
        None when there is no evidence log or no such checkpoint yet."""
        if not self._evidence_on:
            return None
        from ..evidence.audit import bundle_from

        try:
            with self._pool.connection() as conn:
                return bundle_from(QmarkConnection(conn), task_id)
        except LookupError:
            return None
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error("cannot read a proof bundle", exc) from exc

    # -- reading -----------------------------------------------------------------------------------------

    def load_events(self, task_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        """Every event of each task, in order (a task with no events is absent from the result)."""
        out: dict[str, list[StoredEvent]] = {}
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return out
        with self._read() as cur:
            cur.execute(
                "SELECT task_id, seq, task_seq, body FROM events WHERE task_id = ANY(%s) ORDER BY task_id, task_seq",
                (ids,),
            )
            rows = cur.fetchall()
        for task_id, seq, task_seq, body in rows:
            out.setdefault(task_id, []).append(
                StoredEvent(seq=int(seq), task_seq=task_seq, event=event_from_dict(loads(body)))
            )
        return out

    _ROW = "task_id, case_key, client_key, state, version, due_at, created_at, updated_at, court"

    @staticmethod
    def _row(values: Sequence[Any]) -> TaskRow:
        return TaskRow(
            task_id=values[0],
            case_key=values[1],
            client_key=values[2],
            state=values[3],
            version=values[4],
            due_at=values[5],
            created_at=values[6],
            updated_at=values[7],
            court=values[8],
        )

    def task_row(self, task_id: str) -> TaskRow:
        """The scheduling row of a task; raises :class:`~delivery_sdk.UnknownTask`."""
        with self._read() as cur:
            cur.execute(f"SELECT {self._ROW} FROM tasks WHERE task_id = %s", (task_id,))
            values = cur.fetchone()
        if values is None:
            raise UnknownTask(task_id)
        return self._row(values)

    def tasks_of_case(self, case_key: str) -> list[TaskRow]:
        """The scheduling rows of a case's tasks, in creation order."""
        with self._read() as cur:
            cur.execute(f"SELECT {self._ROW} FROM tasks WHERE case_key = %s ORDER BY created_at, task_id", (case_key,))
            return [self._row(v) for v in cur.fetchall()]

    def dispatch_task(self, dispatch_id: str) -> str | None:
        """The task a dispatch belongs to, or None if no such dispatch was ever queued."""
        with self._read() as cur:
            cur.execute("SELECT task_id FROM outbox WHERE dispatch_id = %s", (dispatch_id,))
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def receipt_seen(self, key: str) -> bool:
        """True when a receipt with this deduplication key was recorded."""
        with self._read() as cur:
            cur.execute("SELECT 1 FROM receipts WHERE dedupe_key = %s", (key,))
            return cur.fetchone() is not None

    def pending_outbox(self) -> list[OutboxEntry]:
        """Dispatches whose intent is committed but whose send result is not (in doubt after a crash)."""
        with self._read() as cur:
            cur.execute("SELECT dispatch_id, task_id, channel FROM outbox WHERE NOT done ORDER BY dispatch_id")
            return [OutboxEntry(dispatch_id=d, task_id=t, channel=c) for d, t, c in cur.fetchall()]

    def next_due_at(self, now: datetime | None = None) -> datetime | None:
        """The earliest moment a task becomes claimable: its due time, or for a due task that another owner holds a
        lease on (at ``now``, default the wall clock), the end of that lease; None when no task waits for time. An
        idle worker sleeps until then, so it never spins on another worker's leased tasks."""
        # Three ranges of the due_at index, so the answer costs a few index reads however many tasks wait:
        # due now and not leased (claimable at once), due later, and due now but leased by another worker
        # (claimable when its lease ends; a worker killed with leases held must not make the others spin).
        with self._read() as cur:
            cur.execute(
                "SELECT LEAST("
                " (SELECT MIN(due_at) FROM tasks WHERE due_at <= %(now)s"
                "   AND (lease_until IS NULL OR lease_until <= %(now)s)),"
                " (SELECT MIN(due_at) FROM tasks WHERE due_at > %(now)s),"
                " (SELECT MIN(lease_until) FROM tasks WHERE due_at <= %(now)s AND lease_until > %(now)s))",
                {"now": now or datetime.now(UTC)},
            )
            row = cur.fetchone()
        return None if row is None else row[0]

    def count_by_state(self, *, courts: Sequence[str] | None = None) -> dict[str, int]:
        """How many tasks are in each state, by state name; with ``courts`` (court codes), only the tasks of
        those courts and the courts under them (``鄂01`` covers ``鄂0106``)."""
        if courts is not None and not courts:
            return {}
        with self._read() as cur:
            if courts is None:
                cur.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state")
            else:
                cur.execute(
                    "SELECT state, COUNT(*) FROM tasks WHERE court LIKE ANY(%s) GROUP BY state",
                    ([c + "%" for c in courts],),
                )
            return {state: int(n) for state, n in cur.fetchall()}

    # -- the access log (delivery_sdk.access) ------------------------------------------------------------

    def record_access(self, records: Sequence[AccessRecord]) -> None:
        """Append ``records`` to the access log, each chained to the one before, in one transaction.

        A store opened read-only appends all the same, in a transaction declared READ WRITE that writes the
        access log and nothing else (``docs/access.md``)."""
        if not records:
            return
        if self._closed:
            raise StoreError("cannot record the access: the store is closed")
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if self.readonly:
                    cur.execute("SET TRANSACTION READ WRITE")
                cur.execute("LOCK TABLE access_log IN EXCLUSIVE MODE")  # one chain: appenders take turns
                cur.execute("SELECT seq, chain FROM access_log ORDER BY seq DESC LIMIT 1")
                row = cur.fetchone()
                seq, previous = (0, ACCESS_CHAIN_START) if row is None else (int(row[0]), bytes(row[1]))
                rows = []
                for record in records:
                    seq += 1
                    previous = chain_hash(previous, record)
                    rows.append(
                        (
                            seq,
                            record.at,
                            record.staff_id,
                            record.role,
                            record.task_id,
                            record.court,
                            record.what,
                            previous,
                        )
                    )
                cur.executemany("INSERT INTO access_log VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(
                f"cannot record the access ({exc}): a read of personal data is shown only once it is recorded"
            ) from exc

    def access_records(self, *, task_id: str | None = None, staff_id: str | None = None) -> list[AccessRecord]:
        """The access log in order, or the records of one task or one staff member."""
        with self._read() as cur:
            cur.execute(
                "SELECT seq, at, staff_id, role, task_id, court, what, chain FROM access_log"
                " WHERE (%(t)s::text IS NULL OR task_id = %(t)s) AND (%(s)s::text IS NULL OR staff_id = %(s)s)"
                " ORDER BY seq",
                {"t": task_id, "s": staff_id},
            )
            return [
                AccessRecord(
                    seq=int(r[0]),
                    at=r[1],
                    staff_id=r[2],
                    role=r[3],
                    task_id=r[4],
                    court=r[5],
                    what=r[6],
                    chain=bytes(r[7]),
                )
                for r in cur.fetchall()
            ]

    def latest_event_time(self) -> datetime | None:
        """When the last task changed, or None for an empty store."""
        with self._read() as cur:
            cur.execute("SELECT MAX(updated_at) FROM tasks")
            row = cur.fetchone()
        return None if row is None else row[0]

    def events_after(self, seq: int, limit: int, *, types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Committed events with ``seq`` greater than the given one, in order (for sinks and statistics)."""
        with self._read() as cur:
            if types is None:
                cur.execute("SELECT seq, task_seq, body FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit))
            else:
                cur.execute(
                    "SELECT seq, task_seq, body FROM events WHERE seq > %s AND type = ANY(%s) ORDER BY seq LIMIT %s",
                    (seq, list(types), limit),
                )
            rows = cur.fetchall()
        return [StoredEvent(seq=int(s), task_seq=ts, event=event_from_dict(loads(body))) for s, ts, body in rows]

    def case_keys(self, case_number: str) -> list[str]:
        """Every case key (court|number) with this case number."""
        with self._read() as cur:
            cur.execute(
                "SELECT DISTINCT case_key FROM tasks WHERE substr(case_key, strpos(case_key, '|') + 1) = %s "
                "ORDER BY case_key",
                (case_number,),
            )
            return [r[0] for r in cur.fetchall()]

    def count_events(self) -> int:
        """The number of events stored."""
        with self._read() as cur:
            cur.execute("SELECT seq FROM log_head")
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def all_task_ids(self) -> list[str]:
        """Every task id, in creation order."""
        with self._read() as cur:
            cur.execute("SELECT task_id FROM tasks ORDER BY created_at, task_id")
            return [r[0] for r in cur.fetchall()]

    @property
    def held(self) -> frozenset[str]:
        """The tasks this store leased and has not released (some of the leases may have run out)."""
        return frozenset(self._held)

    def capabilities(self) -> StoreCapabilities:
        """The optional features of this store (see :class:`~delivery_sdk.store.StoreCapabilities`)."""
        return StoreCapabilities(evidence=self, refusals=self, access=self)

    def close(self) -> None:
        """Close the connection pool; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QmarkConnection:
    """A psycopg connection seen as a DB-API connection with ``?`` placeholders, like :mod:`sqlite3`'s.

    The evidence audit (:mod:`delivery_sdk.evidence.audit`) and :class:`~delivery_sdk.evidence.log.SQLiteNodes`
    use plain SQL that PostgreSQL runs as well; this lets them read a PostgreSQL store unchanged.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @staticmethod
    def _sql(query: str) -> str:
        return query.replace("%", "%%").replace("?", "%s")

    def execute(self, query: str, params: Sequence[Any] = ()) -> Cursor[Any]:
        """Run one statement with ``?`` placeholders."""
        if not params:
            return self.conn.execute(query.encode())
        return self.conn.execute(self._sql(query).encode(), params)

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> Cursor[Any]:
        """Run one statement with ``?`` placeholders for each row of ``params``."""
        cur = self.conn.cursor()
        cur.executemany(self._sql(query).encode(), params)
        return cur

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def audit_connection(dsn: str, *, schema: str | None = None, connect_timeout: float = 10.0) -> QmarkConnection:
    """A read-only connection to the store at ``dsn`` on one consistent snapshot (``REPEATABLE READ``), for
    :func:`delivery_sdk.evidence.audit.verify_store` and :func:`~delivery_sdk.evidence.audit.export_bundle`."""
    conninfo, dsn_schema = _split_schema(dsn)
    name = schema or dsn_schema or DEFAULT_SCHEMA
    try:
        conn = psycopg.connect(conninfo, connect_timeout=max(1, round(connect_timeout)))
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {str(exc).strip()}") from exc
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
        if found is None:
            raise FileNotFoundError(f"no store at {mask_dsn(dsn)}: schema {name!r} does not exist")
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
    except BaseException:
        conn.close()
        raise
    return QmarkConnection(conn)
