"""The evidence log inside a SQL store: leaves and tree nodes written in the same transaction as the events.

Every committed event is leaf ``seq - 1`` of one RFC 9162 tree. The store keeps every complete perfect
subtree hash (``evidence_nodes``: level, index, hash; level 0 holds the leaf hashes), so a proof or a root at
any size needs O(log n) reads after a restart, and no rehashing. Signed checkpoints (C2SP signed notes) go in
``evidence_checkpoints``. The tables are created by the store's migrations; this module only reads and
writes them, with plain SQL that carries over to PostgreSQL.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..events import Event
from .canonical import _HEAD, _holds_float, body_leaf_hash
from .checkpoint import sign_checkpoint
from .keys import Signer
from .merkle import (
    CachingNodeStore,
    CompactRange,
    Node,
    NodeKey,
    NodeStore,
    SparseNodeStore,
    consistency_proof,
    inclusion_proof,
    root,
)
from .verify import Checkpoint, ConsistencyProof, InclusionProof

__all__ = ["DENSE_FROM", "EvidenceLog", "SQLConnection", "SQLiteNodes", "stored_nodes"]


class _Rows(Protocol):
    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class SQLConnection(Protocol):
    """What the evidence readers need of a connection: DB-API ``execute`` with ``?`` placeholders.

    A :class:`sqlite3.Connection`, or the PostgreSQL store's
    :class:`~delivery_sdk.store.postgres.QmarkConnection`.
    """

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> _Rows:
        """Run one statement; the rows it returns."""

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement once for each parameter row."""

    def close(self) -> None:
        """Close the connection."""


class SQLiteNodes:
    """The :class:`~delivery_sdk.evidence.merkle.NodeStore` over the ``evidence_nodes`` table.

    Plain SQL on any :class:`SQLConnection` (the PostgreSQL store writes its nodes with its own
    :class:`~delivery_sdk.store.postgres.PostgresNodes`, and reads them with either).
    """

    def __init__(self, db: sqlite3.Connection | SQLConnection) -> None:
        self._db = db

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        if isinstance(self._db, sqlite3.Connection):
            return self._get_sqlite(self._db, keys)
        found: dict[NodeKey, bytes] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            values = ",".join("(?, ?)" for _ in chunk)
            params = [v for key in chunk for v in key]
            for level, idx, digest in self._db.execute(
                f"SELECT level, idx, hash FROM evidence_nodes WHERE (level, idx) IN (VALUES {values})", params
            ):
                found[(level, idx)] = bytes(digest)
        missing = [key for key in keys if key not in found]
        if missing:
            raise LookupError(f"the evidence log lacks tree nodes {missing[:3]}: the store is incomplete")
        return [found[key] for key in keys]

    @staticmethod
    def _get_sqlite(db: sqlite3.Connection, keys: Sequence[NodeKey]) -> list[bytes]:
        # SQLite plans `(level, idx) IN (VALUES ...)` as a scan of the whole table (200 ms a proof at 10^6
        # leaves); one row of scalar subqueries is one primary-key lookup per key, in the keys' order.
        out: list[bytes] = []
        for start in range(0, len(keys), _COLUMNS):
            chunk = keys[start : start + _COLUMNS]
            row = db.execute(_select_sql(len(chunk)), [v for key in chunk for v in key]).fetchone()
            if None in row:
                missing = [key for key, value in zip(chunk, row, strict=True) if value is None]
                raise LookupError(f"the evidence log lacks tree nodes {missing[:3]}: the store is incomplete")
            out.extend(row)
        return out

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        db = self._db
        if not isinstance(db, sqlite3.Connection):
            db.executemany("INSERT INTO evidence_nodes (level, idx, hash) VALUES (?, ?, ?)", list(nodes))
            return
        # The hashes go to sqlite3 as bytearrays: it binds a bytearray directly, but looks a bytes value up
        # in its adapter registry first (two AttributeErrors formatted and cleared per value).
        rows = [(level, idx, bytearray(digest)) for level, idx, digest in nodes]
        if len(rows) < _ROWS:
            db.executemany("INSERT INTO evidence_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)
            return
        # Leaves first, then each level (each an append at the end of its part of the index), in
        # multi-row INSERTs of _ROWS rows (one prepared statement, kept in the connection's cache).
        rows.sort(key=_LEVEL)
        whole = len(rows) - len(rows) % _ROWS
        sql = _insert_sql()
        for start in range(0, whole, _ROWS):
            db.execute(sql, list(_flat(rows[start : start + _ROWS])))
        if whole < len(rows):
            db.executemany("INSERT INTO evidence_nodes (level, idx, hash) VALUES (?, ?, ?)", rows[whole:])

    def leaf_count(self) -> int:
        """How many leaves (events) the stored tree has."""
        row = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_nodes WHERE level = 0").fetchone()
        return int(row[0])


_COLUMNS = 400  # keys per SELECT (800 parameters: under the 999 of old SQLite builds)
_ROWS = 128  # rows per multi-row INSERT (384 parameters: under the 999 of old SQLite builds)


_LEVEL = operator.itemgetter(0)  # a node's level (sort key)
_flat = itertools.chain.from_iterable


@functools.cache
def _select_sql(count: int) -> str:
    return "SELECT " + ", ".join(["(SELECT hash FROM evidence_nodes WHERE level = ? AND idx = ?)"] * count)


@functools.cache
def _insert_sql() -> str:
    return "INSERT INTO evidence_nodes (level, idx, hash) VALUES " + ", ".join(["(?, ?, ?)"] * _ROWS)


# The store keeps the leaf hashes and the levels from DENSE_FROM up; a proof recomputes the three levels in
# between from at most 8 leaves each (one batched read). That halves the rows every event writes.
DENSE_FROM = 4

# The evidence log keeps the last CACHED_NODES nodes its proofs read in memory (up to ~15 MB): nodes never
# change once committed, the upper levels are shared by every proof, and a proof asked again (a bundle
# exported twice, a checkpoint's consistency re-checked) reads nothing from the store. Levels below
# CACHED_FROM are not kept.
CACHED_FROM = 0
CACHED_NODES = 1 << 16


def check_signing(
    origin: str,
    size: int,
    new_root: bytes,
    nodes: NodeStore,
    latest: Sequence[Any] | None,
    extends: Checkpoint | None,
    extends_from: str | None,
) -> None:
    """Before signing the tree of ``size`` leaves: it must extend the engine's witness ``extends`` (if any)
    and the store's own latest checkpoint (``latest``: its ``(size, note)`` row, if any)."""
    from .._exceptions import EvidenceForkError
    from .verify import VerificationError, parse_note
    from .witness import check_extends

    if extends is not None:
        what = f"the last checkpoint this engine signed ({extends_from})" if extends_from else "the given checkpoint"
        check_extends(extends, origin, size, new_root, nodes, what=what, witness=extends_from)
    if latest is not None:
        try:
            stored = Checkpoint.parse(parse_note(str(latest[1])).text)
        except VerificationError as exc:
            raise EvidenceForkError(f"refusing to sign: the store's latest checkpoint cannot be read: {exc}") from None
        check_extends(stored, origin, size, new_root, nodes, what="the store's latest checkpoint", witness=None)


def stored_nodes(nodes: NodeStore) -> SparseNodeStore:
    """The node store as the evidence log lays it out in the ``evidence_nodes`` table."""
    return SparseNodeStore(nodes, dense_from=DENSE_FROM)


class EvidenceLog:
    """The tree's right edge in memory, kept in step with the store's committed events."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._sql = SQLiteNodes(db)
        # Nodes proofs read stay in memory (only committed sizes are ever read through it: a node read is
        # final; resync() clears it anyway).
        self.nodes = CachingNodeStore(stored_nodes(self._sql), max_nodes=CACHED_NODES, min_level=CACHED_FROM)
        self._db = db
        self._range = CompactRange.from_store(self.nodes, self._sql.leaf_count())

    @property
    def size(self) -> int:
        """The number of events in the committed tree."""
        return self._range.size

    def stage(self, first_seq: int, leaves: Sequence[tuple[int, type[Event], bytes]]) -> CompactRange:
        """Write the leaves and nodes of events ``first_seq, first_seq + 1, ...`` (inside the caller's
        transaction) and return the new right edge, to :meth:`accept` once the transaction committed.

        ``leaves`` holds each event's ``(task_seq, class, canonical body)``
        (:func:`~delivery_sdk.serialization.encode_event`)."""
        # body_leaf_hash inlined for the classes known to hold no float
        sha, head, fast = hashlib.sha256, _HEAD, _holds_float.get
        hashes = [
            sha(b'%s%s,"seq":%d,"task_seq":%d}' % (head, body, first_seq + i, task_seq)).digest()
            if fast(cls) is False
            else body_leaf_hash(cls, first_seq + i, task_seq, body)
            for i, (task_seq, cls, body) in enumerate(leaves)
        ]
        return self.stage_hashes(first_seq, hashes)

    def stage_hashes(self, first_seq: int, hashes: Sequence[bytes]) -> CompactRange:
        """:meth:`stage` from the leaf hashes of events ``first_seq, first_seq + 1, ...``."""
        if first_seq - 1 != self._range.size:
            # another writer (an ingest in another process) committed events since: catch up from the store
            self._range = CompactRange.from_store(self.nodes, first_seq - 1)
        staged = self._range.copy()
        # only the nodes the sparse layout keeps (what stored_nodes(...).put_nodes would keep of them all)
        self._sql.put_nodes(staged.append_many(hashes, omit_below=DENSE_FROM))
        return staged

    def accept(self, staged: CompactRange) -> None:
        """Make ``staged`` (the tree's right edge after a committed append) the log's current range."""
        self._range = staged

    def resync(self) -> None:
        """After a rolled-back transaction: read the edge back from what is committed."""
        self.nodes.clear()
        self._range = CompactRange.from_store(self.nodes, self._sql.leaf_count())

    # -- reading -------------------------------------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """The tree's root hash at ``size`` (default: the current size)."""
        if size is None or size == self.size:
            return self._range.root()  # the committed right edge: no reads
        return root(self.nodes, size)

    def inclusion_proof(self, seq: int, tree_size: int) -> InclusionProof:
        """The proof that event ``seq`` (1-based) is in the tree of ``tree_size`` leaves."""
        return inclusion_proof(self.nodes, seq - 1, tree_size)

    def consistency_proof(self, size1: int, size2: int) -> ConsistencyProof:
        """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2``."""
        return consistency_proof(self.nodes, size1, size2)

    # -- checkpoints ---------------------------------------------------------------------------------

    def checkpoint(
        self,
        origin: str,
        signers: Sequence[Signer],
        now: datetime,
        *,
        extends: Checkpoint | None = None,
        extends_from: str | None = None,
    ) -> str | None:
        """Sign the current root (C2SP checkpoint) and keep it; None when nothing new since the last one.

        Raises :class:`~delivery_sdk.EvidenceForkError`, signing nothing, unless the tree extends the store's
        latest checkpoint and ``extends`` (the engine's witness, kept in the file ``extends_from``)."""
        size = self.size
        row = self._db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        check_signing(origin, size, self.root(size), self.nodes, row, extends, extends_from)
        if size == 0 or (row is not None and row[0] >= size):
            return None
        note = sign_checkpoint(Checkpoint(origin=origin, size=size, root=self.root(size)), signers)
        self._db.execute(
            "INSERT INTO evidence_checkpoints (size, note, created_at) VALUES (?, ?, ?)",
            (size, note, now.isoformat()),
        )
        return note

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored checkpoint as ``(tree size, signed note)``, smallest first."""
        return [
            (int(s), str(n)) for s, n in self._db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size")
        ]
