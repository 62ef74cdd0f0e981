"""The evidence Merkle tree beside pymerkle 7, in one run: appends, proofs at 10^6 leaves, cold proofs.

Contenders:

- ``ours-memory``: :class:`delivery_sdk.evidence.MerkleLog` over :class:`MemoryNodeStore`.
- ``ours-sqlite``: the same over a minimal SQLite node table (``evidence_node(level, idx, hash)``, WITHOUT
  ROWID, WAL, synchronous=FULL, one transaction per batch) -- the shape the store integration uses; the
  "cold" figures reopen the file and prove with a fresh connection and a fresh tree object; the "cached"
  ones put a ``CachingNodeStore`` in front (pymerkle keeps an LRU cache of subtree roots too) and are
  taken on a second pass over the same proofs.
- ``ours-sqlite-sparse``: the same table behind ``SparseNodeStore(dense_from=4)``: leaf hashes and levels
  4 and up are written (about 1.06 rows per leaf instead of 2), levels 1-3 recomputed from 8 leaves at most.
- ``pymerkle-memory``: ``pymerkle.InmemoryTree`` (sha256, defaults: RFC 9162 prefixes).
- ``pymerkle-sqlite``: ``pymerkle.SqliteTree`` with its defaults. ``append_entry`` (one transaction per
  leaf) is timed over the first ``--pymerkle-sqlite-appends`` leaves, ``append_entries`` (its bulk API, one
  transaction per call) in batches of ``--batch`` for the rest; then the file is reopened (cold) for the
  proofs. It stores leaf hashes only, and hashes interior nodes when proving (with an LRU cache of
  subtree roots of 128 leaves and more).

Leaves are 8-byte counters; every contender is checked to give the same root. Proofs are timed for
``--proofs`` random (leaf, size) pairs against the full tree and verified with the standalone verifier.
Results go to benchmarks/results/merkle.json.

    python benchmarks/bench_merkle.py [--leaves 1000000] [--proofs 1000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil
from pymerkle import InmemoryTree, SqliteTree  # type: ignore[import-untyped]
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion

from delivery_sdk.evidence import MerkleLog, leaf_hash
from delivery_sdk.evidence.merkle import CachingNodeStore, MemoryNodeStore, Node, NodeKey, NodeStore, SparseNodeStore
from delivery_sdk.evidence.verify import verify_consistency, verify_inclusion

RESULTS = Path(__file__).parent / "results"


class SQLiteNodeStore:
    """A NodeStore over one table; ``get_nodes`` is one query however many keys."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS evidence_node (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
            " hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
        )

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        found: dict[NodeKey, bytes] = {}
        for start in range(0, len(keys), 200):  # SQLite allows 500 terms in a compound SELECT
            chunk = keys[start : start + 200]
            sql = " UNION ALL ".join(
                ["SELECT level, idx, hash FROM evidence_node WHERE level = ? AND idx = ?"] * len(chunk)
            )
            params = [v for key in chunk for v in key]
            found.update(((lv, ix), h) for lv, ix, h in self.con.execute(sql, params))
        return [found[key] for key in keys]

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        self.con.executemany("INSERT OR IGNORE INTO evidence_node (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def size(self) -> int:
        row = self.con.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_node WHERE level = 0").fetchone()
        return int(row[0])

    def close(self) -> None:
        self.con.close()


def entries(n: int) -> list[bytes]:
    return [i.to_bytes(8, "big") for i in range(n)]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else float("inf")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def micro(seconds: float, count: int) -> float:
    return round(seconds / count * 1e6, 2)


def pairs(n: int, count: int, seed: int) -> list[tuple[int, int]]:
    rnd = random.Random(seed)
    return [(rnd.randrange(n), n) for _ in range(count)]


def bench_ours(
    store: NodeStore, data: list[bytes], batch: int, proofs: int, con: sqlite3.Connection | None = None
) -> dict[str, Any]:
    log = MerkleLog(store)
    hashes = [leaf_hash(d) for d in data]
    rss0 = psutil.Process().memory_info().rss

    def append() -> None:
        for start in range(0, len(hashes), batch):
            if con is not None:
                con.execute("BEGIN")
            log.append_many(hashes[start : start + batch])
            if con is not None:
                con.execute("COMMIT")

    _, append_s = timed(append)
    # hashing the inputs is part of an append: time it on its own and add it
    _, hash_s = timed(lambda: [leaf_hash(d) for d in data])
    n = len(data)
    result: dict[str, Any] = {
        "leaves": n,
        "append_seconds": round(append_s + hash_s, 3),
        "appends_per_second": rate(n, append_s + hash_s),
        "rss_growth_mb": round((psutil.Process().memory_info().rss - rss0) / 2**20, 1),
        "root": log.root().hex(),
    }
    result.update(prove_ours(log, hashes, proofs))
    return result


def prove_ours(log: MerkleLog, hashes: list[bytes], proofs: int) -> dict[str, Any]:
    n = log.size
    root = log.root()
    incl_pairs = pairs(n, proofs, 1)
    made, gen_s = timed(lambda: [log.inclusion_proof(i, size) for i, size in incl_pairs])
    _, ver_s = timed(lambda: [verify_inclusion(p.leaf_index, n, hashes[p.leaf_index], p.path, root) for p in made])
    cons_pairs = [(max(1, i), n) for i, _ in pairs(n, proofs, 2)]
    old_roots = [log.root(m) for m, _ in cons_pairs]
    cmade, cgen_s = timed(lambda: [log.consistency_proof(m, size) for m, size in cons_pairs])
    _, cver_s = timed(
        lambda: [verify_consistency(p.size1, n, r, root, p.path) for p, r in zip(cmade, old_roots, strict=True)]
    )
    return {
        "inclusion_proof_us": micro(gen_s, proofs),
        "inclusion_verify_us": micro(ver_s, proofs),
        "consistency_proof_us": micro(cgen_s, proofs),
        "consistency_verify_us": micro(cver_s, proofs),
    }


def cold_ours(path: Path, hashes: list[bytes], proofs: int, dense_from: int = 0) -> dict[str, Any]:
    gc.collect()
    (store, log), open_s = timed(lambda: _reopen(path, dense_from))
    n = log.size
    first, first_s = timed(lambda: log.inclusion_proof(n // 3, n))
    verify_inclusion(n // 3, n, hashes[n // 3], first.path, log.root())
    result = {"open_seconds": round(open_s, 4), "first_inclusion_proof_us": micro(first_s, 1)}
    result.update(prove_ours(log, hashes, proofs))
    store.close()
    return result


def cached_ours(path: Path, hashes: list[bytes], proofs: int) -> dict[str, Any]:
    """Proofs through a CachingNodeStore, after one warm-up pass over the same (leaf, size) pairs."""
    store = SQLiteNodeStore(path)
    log = MerkleLog(CachingNodeStore(store), store.size())
    prove_ours(log, hashes, proofs)
    result = prove_ours(log, hashes, proofs)
    store.close()
    return result


def _reopen(path: Path, dense_from: int = 0) -> tuple[SQLiteNodeStore, MerkleLog]:
    store = SQLiteNodeStore(path)
    return store, MerkleLog(SparseNodeStore(store, dense_from) if dense_from else store, store.size())


def prove_pymerkle(tree: Any, n: int, proofs: int) -> dict[str, Any]:
    root = tree.get_root()
    incl_pairs = pairs(n, proofs, 1)
    made, gen_s = timed(lambda: [tree.prove_inclusion(i + 1, size) for i, size in incl_pairs])
    leaves = [tree.get_leaf(i + 1) for i, _ in incl_pairs]
    _, ver_s = timed(lambda: [pm_verify_inclusion(b, root, p) for b, p in zip(leaves, made, strict=True)])
    cons_pairs = [(max(1, i), n) for i, _ in pairs(n, proofs, 2)]
    old_roots = [tree.get_root(m) for m, _ in cons_pairs]
    cmade, cgen_s = timed(lambda: [tree.prove_consistency(m, size) for m, size in cons_pairs])
    _, cver_s = timed(lambda: [pm_verify_consistency(r, root, p) for r, p in zip(old_roots, cmade, strict=True)])
    return {
        "inclusion_proof_us": micro(gen_s, proofs),
        "inclusion_verify_us": micro(ver_s, proofs),
        "consistency_proof_us": micro(cgen_s, proofs),
        "consistency_verify_us": micro(cver_s, proofs),
    }


def bench_pymerkle_memory(data: list[bytes], proofs: int) -> dict[str, Any]:
    rss0 = psutil.Process().memory_info().rss
    tree = InmemoryTree(algorithm="sha256")
    _, append_s = timed(lambda: tree.append_entries(data))
    n = len(data)
    result: dict[str, Any] = {
        "leaves": n,
        "append_seconds": round(append_s, 3),
        "appends_per_second": rate(n, append_s),
        "rss_growth_mb": round((psutil.Process().memory_info().rss - rss0) / 2**20, 1),
        "root": tree.get_root().hex(),
    }
    result.update(prove_pymerkle(tree, n, proofs))
    return result


def bench_pymerkle_sqlite(path: Path, data: list[bytes], appends: int, batch: int, proofs: int) -> dict[str, Any]:
    tree = SqliteTree(str(path), algorithm="sha256")

    def one_by_one() -> None:
        for d in data[:appends]:
            tree.append_entry(d)

    def batched() -> None:
        for start in range(appends, len(data), batch):
            tree.append_entries(data[start : start + batch])

    _, single_s = timed(one_by_one)
    _, batch_s = timed(batched)
    tree.close()
    gc.collect()
    tree, open_s = timed(lambda: SqliteTree(str(path), algorithm="sha256"))
    n = len(data)
    _, first_s = timed(lambda: tree.prove_inclusion(n // 3 + 1, n))
    result: dict[str, Any] = {
        "leaves": n,
        "append_entry_count": appends,
        "append_entry_per_second": rate(appends, single_s),
        "append_entries_batch": batch,
        "appends_per_second": rate(n - appends, batch_s),
        "open_seconds": round(open_s, 4),
        "first_inclusion_proof_us": micro(first_s, 1),
        "root": tree.get_root().hex(),
    }
    result.update(prove_pymerkle(tree, n, proofs))
    tree.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--pymerkle-sqlite-appends", type=int, default=2000)
    args = parser.parse_args(argv)

    data = entries(args.leaves)
    hashes = [leaf_hash(d) for d in data]
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "leaves": args.leaves,
        "proofs": args.proofs,
        "batch": args.batch,
    }
    total = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result["ours-memory"] = bench_ours(MemoryNodeStore(), data, args.batch, args.proofs)
        print("ours-memory", result["ours-memory"], flush=True)
        gc.collect()

        path = Path(tmp) / "ours.sqlite"
        store = SQLiteNodeStore(path)
        result["ours-sqlite"] = bench_ours(store, data, args.batch, args.proofs, store.con)
        store.close()
        result["ours-sqlite"]["cold"] = cold_ours(path, hashes, args.proofs)
        result["ours-sqlite"]["cached"] = cached_ours(path, hashes, args.proofs)
        result["ours-sqlite"]["file_mb"] = round(path.stat().st_size / 2**20, 1)
        print("ours-sqlite", result["ours-sqlite"], flush=True)
        gc.collect()

        path = Path(tmp) / "ours-sparse.sqlite"
        store = SQLiteNodeStore(path)
        sparse = bench_ours(SparseNodeStore(store, 4), data, args.batch, args.proofs, store.con)
        store.close()
        sparse["cold"] = cold_ours(path, hashes, args.proofs, dense_from=4)
        sparse["file_mb"] = round(path.stat().st_size / 2**20, 1)
        result["ours-sqlite-sparse"] = sparse
        print("ours-sqlite-sparse", sparse, flush=True)
        gc.collect()

        result["pymerkle-memory"] = bench_pymerkle_memory(data, args.proofs)
        print("pymerkle-memory", result["pymerkle-memory"], flush=True)
        gc.collect()

        result["pymerkle-sqlite"] = bench_pymerkle_sqlite(
            Path(tmp) / "pymerkle.sqlite", data, min(args.pymerkle_sqlite_appends, args.leaves), args.batch, args.proofs
        )
        print("pymerkle-sqlite", result["pymerkle-sqlite"], flush=True)

    roots = {
        name: result[name]["root"] for name in ("ours-memory", "ours-sqlite", "pymerkle-memory", "pymerkle-sqlite")
    }
    if len(set(roots.values())) != 1:
        raise SystemExit(f"the contenders disagree on the root: {roots}")
    ours, theirs = result["ours-sqlite"], result["pymerkle-sqlite"]
    result["ratios_vs_pymerkle_sqlite"] = {
        "appends_batched": round(ours["appends_per_second"] / theirs["appends_per_second"], 1),
        "appends_vs_append_entry": round(ours["appends_per_second"] / theirs["append_entry_per_second"], 1),
        "appends_batched_sparse": round(
            result["ours-sqlite-sparse"]["appends_per_second"] / theirs["appends_per_second"], 1
        ),
        "inclusion_proof": round(theirs["inclusion_proof_us"] / ours["inclusion_proof_us"], 1),
        "consistency_proof": round(theirs["consistency_proof_us"] / ours["consistency_proof_us"], 1),
        "inclusion_proof_cached": round(theirs["inclusion_proof_us"] / ours["cached"]["inclusion_proof_us"], 1),
        "consistency_proof_cached": round(theirs["consistency_proof_us"] / ours["cached"]["consistency_proof_us"], 1),
        "first_cold_inclusion_proof": round(
            theirs["first_inclusion_proof_us"] / ours["cold"]["first_inclusion_proof_us"], 1
        ),
    }
    result["total_seconds"] = round(time.perf_counter() - total, 1)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "merkle.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios_vs_pymerkle_sqlite"]), "->", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
