"""The evidence log inside a SQL store: leaves and tree nodes written in the same transaction as the events.

Every committed event is leaf ``seq - 1`` of one RFC 9162 tree. The store keeps every complete perfect
subtree hash (``evidence_nodes``: level, index, hash; level 0 holds the leaf hashes), so a proof or a root at
any size needs O(log n) reads after a restart, and no rehashing. Signed checkpoints (C2SP signed notes) go in
``evidence_checkpoints``. The tables are created by the store's migrations; this module only reads and
writes them, with plain SQL that carries over to PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..events import Event, StoredEvent
from .canonical import leaf_bytes
from .checkpoint import sign_checkpoint
from .keys import Signer
from .merkle import CompactRange, Node, NodeKey, SparseNodeStore, consistency_proof, inclusion_proof, root
from .verify import Checkpoint, ConsistencyProof, InclusionProof, leaf_hash

__all__ = ["DENSE_FROM", "EvidenceLog", "SQLiteNodes", "stored_nodes"]


class SQLiteNodes:
    """The :class:`~delivery_sdk.evidence.merkle.NodeStore` over the ``evidence_nodes`` table."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
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

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        self._db.executemany("INSERT INTO evidence_nodes (level, idx, hash) VALUES (?, ?, ?)", list(nodes))

    def leaf_count(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_nodes WHERE level = 0").fetchone()
        return int(row[0])


# The store keeps the leaf hashes and the levels from DENSE_FROM up; a proof recomputes the three levels in
# between from at most 8 leaves each (one batched read). That halves the rows every event writes.
DENSE_FROM = 4


def stored_nodes(nodes: SQLiteNodes) -> SparseNodeStore:
    """The node store as the evidence log lays it out in the ``evidence_nodes`` table."""
    return SparseNodeStore(nodes, dense_from=DENSE_FROM)


class EvidenceLog:
    """The tree's right edge in memory, kept in step with the store's committed events."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._sql = SQLiteNodes(db)
        self.nodes = stored_nodes(self._sql)
        self._db = db
        self._range = CompactRange.from_store(self.nodes, self._sql.leaf_count())

    @property
    def size(self) -> int:
        return self._range.size

    def stage(self, first_seq: int, events: Sequence[tuple[int, Event, dict[str, Any]]]) -> CompactRange:
        """Write the leaves and nodes of events ``first_seq, first_seq + 1, ...`` (inside the caller's
        transaction) and return the new right edge, to :meth:`accept` once the transaction committed."""
        if first_seq - 1 != self._range.size:
            # another writer (an ingest in another process) committed events since: catch up from the store
            self._range = CompactRange.from_store(self.nodes, first_seq - 1)
        staged = self._range.copy()
        hashes = [
            leaf_hash(leaf_bytes(StoredEvent(seq=first_seq + i, task_seq=task_seq, event=event), data))
            for i, (task_seq, event, data) in enumerate(events)
        ]
        self.nodes.put_nodes(staged.append_many(hashes))
        return staged

    def accept(self, staged: CompactRange) -> None:
        self._range = staged

    def resync(self) -> None:
        """After a rolled-back transaction: read the edge back from what is committed."""
        self._range = CompactRange.from_store(self.nodes, self._sql.leaf_count())

    # -- reading -------------------------------------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        return root(self.nodes, self.size if size is None else size)

    def inclusion_proof(self, seq: int, tree_size: int) -> InclusionProof:
        return inclusion_proof(self.nodes, seq - 1, tree_size)

    def consistency_proof(self, size1: int, size2: int) -> ConsistencyProof:
        return consistency_proof(self.nodes, size1, size2)

    # -- checkpoints ---------------------------------------------------------------------------------

    def checkpoint(self, origin: str, signers: Sequence[Signer], now: datetime) -> str | None:
        """Sign the current root (C2SP checkpoint) and keep it; None when nothing new since the last one."""
        size = self.size
        last = self._db.execute("SELECT MAX(size) FROM evidence_checkpoints").fetchone()[0]
        if size == 0 or (last is not None and last >= size):
            return None
        note = sign_checkpoint(Checkpoint(origin=origin, size=size, root=self.root(size)), signers)
        self._db.execute(
            "INSERT INTO evidence_checkpoints (size, note, created_at) VALUES (?, ?, ?)",
            (size, note, now.isoformat()),
        )
        return note

    def checkpoints(self) -> list[tuple[int, str]]:
        return [
            (int(s), str(n)) for s, n in self._db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size")
        ]
