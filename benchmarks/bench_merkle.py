"""The evidence Merkle tree beside pymerkle 7, in one run: appends, proofs at 10^6 leaves, cold proofs.

Contenders:

- ``ours-sqlite``: **the product path**. A real store file made by :class:`delivery_sdk.SQLiteStore` (its
  migrations, WAL, ``synchronous=FULL``), leaves appended in batches of ``--batch`` through
  :meth:`EvidenceLog.stage_hashes` -- the code the store's commit runs after it serialised the events (the
  canonical event encoding is left out: the benchmark appends leaf data) -- one ``BEGIN IMMEDIATE ...
  COMMIT`` per batch. Leaf hashing counts as part of an append. Proofs: the file is closed and reopened
  (a new ``SQLiteStore``: new connection, empty node cache) and proven through ``store.evidence``, as a
  restarted process would: ``first_inclusion_proof_us`` is the very first proof, ``cold`` the first pass
  of ``--proofs`` proofs after the reopen, ``warm`` a second pass over the same proofs. ``uncached`` is
  the same first pass reading every node from SQLite (no in-memory node cache at all).
- ``ours-memory``: :class:`delivery_sdk.evidence.MerkleLog` over :class:`MemoryNodeStore`.
- ``pymerkle-memory``: ``pymerkle.InmemoryTree`` (sha256, defaults: RFC 9162 prefixes).
- ``pymerkle-sqlite``: ``pymerkle.SqliteTree`` with its defaults. ``append_entry`` (its default, one
  transaction per leaf) is timed over the first ``--pymerkle-sqlite-appends`` leaves, ``append_entries``
  (its bulk API, one transaction per call) in batches of ``--batch`` for the rest. Then the file is reopened
  (cold) for the proofs: first proof, first pass (``cold``), second pass (``warm``). pymerkle stores the
  leaf hashes (and entries) only and hashes interior nodes when proving, with an LRU cache of subtree roots.

Leaves are 8-byte counters; every contender must give the same root. Proofs are for ``--proofs`` random
(leaf, size) pairs against the full tree, verified with the standalone verifier. The proof passes of ours
and pymerkle's SQLite tree are interleaved in ``--rounds`` slices so that both see the same machine load.
Appends and proofs are timed on the wall clock and in CPU seconds of this process (``*_cpu_*``): on a
machine shared with other work the wall clock measures that work too. ``breakdown_us_per_leaf`` splits
our product appends into leaf hashing, tree hashing and the INSERTs (CPU) and the commit (wall: the
fsync). Results go to benchmarks/results/merkle.json (``--out``); ``ratios_vs_pymerkle_sqlite`` sets each
figure against pymerkle's SQLite tree (appends against its default ``append_entry`` and its bulk
``append_entries`` both).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from pymerkle import InmemoryTree, SqliteTree  # type: ignore[import-untyped]
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion

from delivery_sdk import SQLiteStore
from delivery_sdk.evidence import MerkleLog, leaf_hash
from delivery_sdk.evidence.log import DENSE_FROM, EvidenceLog, SQLiteNodes, stored_nodes
from delivery_sdk.evidence.merkle import CompactRange, MemoryNodeStore, consistency_proof, inclusion_proof
from delivery_sdk.evidence.verify import verify_consistency, verify_inclusion

RESULTS = Path(__file__).parent / "results"

Prover = Callable[[str, int, int], Any]  # ("inclusion" | "consistency", index or old size, tree size) -> proof


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


def workload(n: int, count: int) -> tuple[list[int], list[int]]:
    """Random leaf indexes (inclusion) and old sizes (consistency), the same for every contender."""
    rnd = random.Random(1)
    leaves = [rnd.randrange(n) for _ in range(count)]
    rnd = random.Random(2)
    olds = [max(1, rnd.randrange(n)) for _ in range(count)]
    return leaves, olds


# -- ours ----------------------------------------------------------------------------------------------------


def append_memory(data: list[bytes], batch: int) -> tuple[MerkleLog, dict[str, Any]]:
    rss0 = psutil.Process().memory_info().rss
    log = MerkleLog(MemoryNodeStore())

    def append() -> None:
        for start in range(0, len(data), batch):
            log.append_data(data[start : start + batch])

    _, seconds = timed(append)
    return log, {
        "leaves": len(data),
        "append_seconds": round(seconds, 3),
        "appends_per_second": rate(len(data), seconds),
        "rss_growth_mb": round((psutil.Process().memory_info().rss - rss0) / 2**20, 1),
        "root": log.root().hex(),
    }


def append_product(path: Path, data: list[bytes], batch: int) -> dict[str, Any]:
    """Batched appends through the store's own evidence code, one write transaction per batch."""
    store = SQLiteStore(path)
    evidence = store.evidence
    assert evidence is not None
    db = store._db  # the store's connection: the transaction the commit path would run
    hash_cpu = stage_cpu = commit_s = 0.0
    clock, cpu_clock = time.perf_counter, time.process_time
    started, cpu_started = clock(), cpu_clock()
    for start in range(0, len(data), batch):
        c0 = cpu_clock()
        hashes = [leaf_hash(d) for d in data[start : start + batch]]
        c1 = cpu_clock()
        db.execute("BEGIN IMMEDIATE")
        staged = evidence.stage_hashes(start + 1, hashes)
        c2, t2 = cpu_clock(), clock()
        db.execute("COMMIT")
        evidence.accept(staged)
        commit_s += clock() - t2
        hash_cpu += c1 - c0
        stage_cpu += c2 - c1
    seconds, cpu = clock() - started, cpu_clock() - cpu_started
    n = len(data)
    rows = db.execute("SELECT COUNT(*) FROM evidence_nodes").fetchone()[0]
    root = evidence.root().hex()
    store.close()
    # the tree hashing alone (what stage_hashes does besides the INSERTs), over the same batches in memory
    tree = CompactRange()
    leaf_hashes = [leaf_hash(d) for d in data]
    c0 = cpu_clock()
    for start in range(0, n, batch):
        tree.append_many(leaf_hashes[start : start + batch], omit_below=DENSE_FROM)
    tree_cpu = cpu_clock() - c0
    return {
        "leaves": n,
        "append_seconds": round(seconds, 3),
        "appends_per_second": rate(n, seconds),
        "appends_per_cpu_second": rate(n, cpu),
        "rows_per_leaf": round(rows / n, 3),
        "breakdown_us_per_leaf": {
            "leaf_hashing_cpu": micro(hash_cpu, n),
            "tree_hashing_cpu": micro(tree_cpu, n),
            "row_inserts_cpu": micro(max(0.0, stage_cpu - tree_cpu), n),
            "commit_wall": micro(commit_s, n),
        },
        "root": root,
    }


def our_prover(log: MerkleLog | EvidenceLog) -> Prover:
    if isinstance(log, MerkleLog):
        return lambda kind, a, n: log.inclusion_proof(a, n) if kind == "inclusion" else log.consistency_proof(a, n)
    return lambda kind, a, n: log.inclusion_proof(a + 1, n) if kind == "inclusion" else log.consistency_proof(a, n)


def uncached_prover(store: SQLiteStore) -> Prover:
    nodes = stored_nodes(SQLiteNodes(store._db))
    return lambda kind, a, n: inclusion_proof(nodes, a, n) if kind == "inclusion" else consistency_proof(nodes, a, n)


def pymerkle_prover(tree: Any) -> Prover:
    return lambda kind, a, n: tree.prove_inclusion(a + 1, n) if kind == "inclusion" else tree.prove_consistency(a, n)


def proof_passes(
    provers: dict[str, Prover], n: int, leaves: list[int], olds: list[int], rounds: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[Any]]]]:
    """One pass of every proof for each prover, in ``rounds`` interleaved slices.

    Microseconds per proof, wall clock (``*_proof_us``) and CPU time of this process (``*_proof_cpu_us``:
    what the proof costs when other processes compete for the cores).
    """
    wall = {name: {"inclusion": 0.0, "consistency": 0.0} for name in provers}
    cpu = {name: {"inclusion": 0.0, "consistency": 0.0} for name in provers}
    made: dict[str, dict[str, list[Any]]] = {name: {"inclusion": [], "consistency": []} for name in provers}
    step = -(-len(leaves) // rounds)
    for start in range(0, len(leaves), step):
        for kind, args in (("inclusion", leaves), ("consistency", olds)):
            for name, prove in provers.items():
                part = args[start : start + step]
                c0, w0 = time.process_time(), time.perf_counter()
                proofs = [prove(kind, a, n) for a in part]
                wall[name][kind] += time.perf_counter() - w0
                cpu[name][kind] += time.process_time() - c0
                made[name][kind].extend(proofs)
    us = {
        name: {
            **{f"{kind}_proof_us": micro(s, len(leaves)) for kind, s in wall[name].items()},
            **{f"{kind}_proof_cpu_us": micro(s, len(leaves)) for kind, s in cpu[name].items()},
        }
        for name in provers
    }
    return us, made


def verify_ours(made: dict[str, list[Any]], hashes: list[bytes], roots: list[bytes], root: bytes) -> dict[str, float]:
    incl, cons = made["inclusion"], made["consistency"]
    n = len(hashes)
    _, iv = timed(lambda: [verify_inclusion(p.leaf_index, n, hashes[p.leaf_index], p.path, root) for p in incl])
    _, cv = timed(lambda: [verify_consistency(p.size1, n, r, root, p.path) for p, r in zip(cons, roots, strict=True)])
    return {"inclusion_verify_us": micro(iv, len(incl)), "consistency_verify_us": micro(cv, len(cons))}


def verify_pymerkle(tree: Any, made: dict[str, list[Any]], leaves: list[int], olds: list[int]) -> dict[str, float]:
    root = tree.get_root()
    blobs = [tree.get_leaf(i + 1) for i in leaves]
    roots = [tree.get_root(m) for m in olds]
    _, iv = timed(lambda: [pm_verify_inclusion(b, root, p) for b, p in zip(blobs, made["inclusion"], strict=True)])
    _, cv = timed(lambda: [pm_verify_consistency(r, root, p) for r, p in zip(roots, made["consistency"], strict=True)])
    return {"inclusion_verify_us": micro(iv, len(leaves)), "consistency_verify_us": micro(cv, len(olds))}


# -- pymerkle --------------------------------------------------------------------------------------------------


def append_pymerkle_memory(data: list[bytes]) -> tuple[Any, dict[str, Any]]:
    rss0 = psutil.Process().memory_info().rss
    tree = InmemoryTree(algorithm="sha256")
    _, seconds = timed(lambda: tree.append_entries(data))
    return tree, {
        "leaves": len(data),
        "append_seconds": round(seconds, 3),
        "appends_per_second": rate(len(data), seconds),
        "rss_growth_mb": round((psutil.Process().memory_info().rss - rss0) / 2**20, 1),
        "root": tree.get_root().hex(),
    }


def append_pymerkle_sqlite(path: Path, data: list[bytes], appends: int, batch: int) -> dict[str, Any]:
    tree = SqliteTree(str(path), algorithm="sha256")

    def one_by_one() -> None:
        for d in data[:appends]:
            tree.append_entry(d)

    def batched() -> None:
        for start in range(appends, len(data), batch):
            tree.append_entries(data[start : start + batch])

    c0 = time.process_time()
    _, single_s = timed(one_by_one)
    c1 = time.process_time()
    _, batch_s = timed(batched)
    c2 = time.process_time()
    tree.close()
    return {
        "leaves": len(data),
        "append_entry": {
            "what": "pymerkle's default append (one transaction per leaf)",
            "leaves": appends,
            "appends_per_second": rate(appends, single_s),
            "appends_per_cpu_second": rate(appends, c1 - c0),
        },
        "append_entries": {
            "what": f"pymerkle's bulk append, batches of {batch} (one transaction per batch)",
            "leaves": len(data) - appends,
            "appends_per_second": rate(len(data) - appends, batch_s),
            "appends_per_cpu_second": rate(len(data) - appends, c2 - c1),
        },
    }


# -- main ------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved slices of the proof passes")
    parser.add_argument("--pymerkle-sqlite-appends", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "merkle.json")
    args = parser.parse_args(argv)

    n = args.leaves
    data = entries(n)
    hashes = [leaf_hash(d) for d in data]
    leaves, olds = workload(n, args.proofs)
    gc.collect()
    gc.freeze()  # the 2 x 10^6 inputs are not garbage: keep the collector from rescanning them (for everyone)
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
        "leaves": n,
        "proofs": args.proofs,
        "batch": args.batch,
    }
    total = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # memory contenders
        log, mem = append_memory(data, args.batch)
        us, made = proof_passes({"ours": our_prover(log)}, n, leaves, olds, 1)
        mem.update(us["ours"])
        mem.update(verify_ours(made["ours"], hashes, [log.root(m) for m in olds], log.root()))
        result["ours-memory"] = mem
        print("ours-memory", mem, flush=True)
        del log, made
        gc.collect()
        tree, pmem = append_pymerkle_memory(data)
        us, made = proof_passes({"pymerkle": pymerkle_prover(tree)}, n, leaves, olds, 1)
        pmem.update(us["pymerkle"])
        pmem.update(verify_pymerkle(tree, made["pymerkle"], leaves, olds))
        result["pymerkle-memory"] = pmem
        print("pymerkle-memory", pmem, flush=True)
        del tree, made
        gc.collect()

        # SQLite contenders: appends
        ours_path, theirs_path = Path(tmp) / "store.sqlite3", Path(tmp) / "pymerkle.sqlite3"
        ours = append_product(ours_path, data, args.batch)
        ours["file_mb"] = round(ours_path.stat().st_size / 2**20, 1)
        print("ours-sqlite appends", ours, flush=True)
        gc.collect()
        theirs = append_pymerkle_sqlite(theirs_path, data, min(args.pymerkle_sqlite_appends, n), args.batch)
        print("pymerkle-sqlite appends", theirs, flush=True)
        gc.collect()

        # SQLite contenders: proofs after reopening (a restart), interleaved
        store, open_s = timed(lambda: SQLiteStore(ours_path))
        evidence = store.evidence
        assert evidence is not None
        first, first_s = timed(lambda: evidence.inclusion_proof(n // 3 + 1, n))
        verify_inclusion(n // 3, n, hashes[n // 3], first.path, evidence.root())
        ours.update({"open_seconds": round(open_s, 4), "first_inclusion_proof_us": micro(first_s, 1)})
        tree, topen_s = timed(lambda: SqliteTree(str(theirs_path), algorithm="sha256"))
        _, tfirst_s = timed(lambda: tree.prove_inclusion(n // 3 + 1, n))
        theirs.update({"open_seconds": round(topen_s, 4), "first_inclusion_proof_us": micro(tfirst_s, 1)})
        provers = {
            "ours": our_prover(evidence),
            "ours-uncached": uncached_prover(store),
            "pymerkle": pymerkle_prover(tree),
        }
        cold, made = proof_passes(provers, n, leaves, olds, args.rounds)
        warm, _ = proof_passes(provers, n, leaves, olds, args.rounds)
        root = evidence.root()
        ours.update({"root": root.hex(), "cold": cold["ours"], "warm": warm["ours"], "uncached": cold["ours-uncached"]})
        ours["cold"].update(verify_ours(made["ours"], hashes, [evidence.root(m) for m in olds], root))
        ours["uncached"].update(verify_ours(made["ours-uncached"], hashes, [evidence.root(m) for m in olds], root))
        theirs.update({"root": tree.get_root().hex(), "cold": cold["pymerkle"], "warm": warm["pymerkle"]})
        theirs["cold"].update(verify_pymerkle(tree, made["pymerkle"], leaves, olds))
        theirs["file_mb"] = round(theirs_path.stat().st_size / 2**20, 1)
        tree.close()
        store.close()
        result["ours-sqlite"], result["pymerkle-sqlite"] = ours, theirs
        print("ours-sqlite", ours, flush=True)
        print("pymerkle-sqlite", theirs, flush=True)

    roots = {
        name: result[name]["root"] for name in ("ours-memory", "ours-sqlite", "pymerkle-memory", "pymerkle-sqlite")
    }
    if len(set(roots.values())) != 1:
        raise SystemExit(f"the contenders disagree on the root: {roots}")

    def ratio(theirs_value: float, ours_value: float) -> float:
        return round(theirs_value / ours_value, 1)

    result["ratios_vs_pymerkle_sqlite"] = {
        "appends_vs_append_entry (pymerkle default)": ratio(
            ours["appends_per_second"], theirs["append_entry"]["appends_per_second"]
        ),
        "appends_vs_append_entries (pymerkle bulk)": ratio(
            ours["appends_per_second"], theirs["append_entries"]["appends_per_second"]
        ),
        "appends_vs_append_entry_cpu": ratio(
            ours["appends_per_cpu_second"], theirs["append_entry"]["appends_per_cpu_second"]
        ),
        "appends_vs_append_entries_cpu": ratio(
            ours["appends_per_cpu_second"], theirs["append_entries"]["appends_per_cpu_second"]
        ),
        "first_inclusion_proof_after_reopen": ratio(
            theirs["first_inclusion_proof_us"], ours["first_inclusion_proof_us"]
        ),
        **{
            f"{kind}_proof_{phase}{clock}": ratio(
                # pymerkle has no uncached mode: our pass without a node cache is set against its cold pass
                theirs["cold" if phase == "uncached" else phase][f"{kind}_proof{clock}_us"],
                ours[phase][f"{kind}_proof{clock}_us"],
            )
            for clock in ("", "_cpu")
            for phase in ("cold", "warm", "uncached")
            for kind in ("inclusion", "consistency")
        },
    }
    result["total_seconds"] = round(time.perf_counter() - total, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios_vs_pymerkle_sqlite"], indent=1), "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
