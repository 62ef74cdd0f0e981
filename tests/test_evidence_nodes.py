"""The evidence log's node storage on SQLite: batched reads by primary key, multi-row writes, the node cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from delivery_sdk import SQLiteStore
from delivery_sdk.evidence.log import DENSE_FROM, SQLiteNodes, _select_sql, stored_nodes
from delivery_sdk.evidence.merkle import (
    CachingNodeStore,
    CompactRange,
    MemoryNodeStore,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
)
from delivery_sdk.evidence.verify import leaf_hash

N = 1000
HASHES = [leaf_hash(i.to_bytes(4, "big")) for i in range(N)]
REFERENCE = MerkleLog()
REFERENCE.append_many(HASHES)


def fill(path: Path, batches: list[int]) -> None:
    """Append the leaves through the store's own evidence code, one transaction per batch."""
    store = SQLiteStore(path)
    evidence = store.evidence
    assert evidence is not None
    start = 0
    for size in batches:
        store._db.execute("BEGIN IMMEDIATE")
        staged = evidence.stage_hashes(start + 1, HASHES[start : start + size])
        store._db.execute("COMMIT")
        evidence.accept(staged)
        start += size
    store.close()


def test_the_store_holds_exactly_the_sparse_layout_and_proves_like_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    fill(path, [1, 2, 127, 128, 129, 300, 13, 300])  # single rows, whole multi-row chunks and remainders
    expected = MemoryNodeStore()
    expected_sparse = stored_nodes(expected)
    expected_sparse.put_nodes(CompactRange().append_many(HASHES))
    db = sqlite3.connect(path)
    rows = db.execute("SELECT level, idx, hash FROM evidence_nodes ORDER BY level, idx").fetchall()
    assert rows == [
        (level, idx, expected.get_nodes([(level, idx)])[0])
        for level in range(20)
        for idx in range(expected.count(level))
    ]
    assert all(level == 0 or level >= DENSE_FROM for level, _, _ in rows)
    db.close()
    store = SQLiteStore(path)  # reopened: a restart
    evidence = store.evidence
    assert evidence is not None
    assert evidence.size == N
    assert evidence.root() == REFERENCE.root()
    for m in range(0, N, 37):
        assert evidence.inclusion_proof(m + 1, N) == REFERENCE.inclusion_proof(m, N)
        assert evidence.consistency_proof(m, N) == REFERENCE.consistency_proof(m, N)
    store.close()


def test_reads_are_one_statement_by_primary_key_and_name_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    fill(path, [N])
    db = sqlite3.connect(path)
    plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + _select_sql(3), [0, 1, 4, 2, 0, 5]))
    assert "PRIMARY KEY" in plan
    assert "SCAN evidence_nodes" not in plan  # a scan of the table would cost O(n) per proof
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    nodes = stored_nodes(SQLiteNodes(db))
    assert inclusion_proof(nodes, 345, N) == REFERENCE.inclusion_proof(345, N)
    assert len(statements) == 1
    keys = [(0, i) for i in range(900)]  # more keys than one statement takes
    assert SQLiteNodes(db).get_nodes(keys) == HASHES[:900]
    with pytest.raises(LookupError, match=r"lacks tree nodes \[\(0, 1000\), \(5, 99\)\]"):
        SQLiteNodes(db).get_nodes([(0, 3), (0, 1000), (5, 99)])
    db.close()


def test_the_evidence_log_reads_a_repeated_proof_from_memory(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    fill(path, [N])
    store = SQLiteStore(path)
    evidence = store.evidence
    assert evidence is not None
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    first = evidence.consistency_proof(123, N), evidence.inclusion_proof(777, N)
    read = len(statements)
    assert read == 2
    assert (evidence.consistency_proof(123, N), evidence.inclusion_proof(777, N)) == first
    assert len(statements) == read
    evidence.resync()  # after a rollback the cache starts again from the store
    assert evidence.inclusion_proof(777, N) == first[1]
    assert len(statements) > read
    store.close()


def test_the_cache_keeps_only_levels_from_min_level() -> None:
    inner = MemoryNodeStore()
    inner.put_nodes(CompactRange().append_many(HASHES))
    cached = CachingNodeStore(inner, min_level=3)
    assert inclusion_proof(cached, 500, N) == REFERENCE.inclusion_proof(500, N)
    assert cached._cache
    assert all(level >= 3 for level, _ in cached._cache)
    misses = cached.misses
    assert consistency_proof(cached, 500, N) == REFERENCE.consistency_proof(500, N)
    assert cached.hits > 0
    assert cached.misses > misses


def test_append_many_can_leave_out_the_levels_a_sparse_store_recomputes() -> None:
    full, sparse = CompactRange(), CompactRange()
    for start in range(0, N, 33):
        nodes = full.append_many(HASHES[start : start + 33])
        assert sparse.append_many(HASHES[start : start + 33], omit_below=DENSE_FROM) == [
            node for node in nodes if not 0 < node[0] < DENSE_FROM
        ]
    assert sparse.hashes == full.hashes
    assert sparse.root() == REFERENCE.root()
