"""The evidence Merkle tree: RFC 9162 / CT known answers, pymerkle agreement, proofs for every small size pair.

The reference proofs here are the recursive definitions of RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1
(PROOF/SUBPROOF) written out literally, over an in-memory list of leaf hashes; the library computes the
same proofs from stored perfect-subtree hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from delivery_sdk.evidence.merkle import (
    EMPTY_ROOT,
    CachingNodeStore,
    CompactRange,
    MemoryNodeStore,
    MerkleLog,
    SparseNodeStore,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root,
)
from delivery_sdk.evidence.verify import (
    ConsistencyProof,
    InclusionProof,
    VerificationError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "ct_vectors.json").read_text("utf-8"))
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaf_inputs_hex"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots_hex_by_size"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- the RFC's recursive definitions, literally ---------------------------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def ref_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, hashes[:k]), mth(hashes[k:])]
    return [*ref_path(m - k, hashes[k:]), mth(hashes[:k])]


def ref_subproof(m: int, hashes: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [mth(hashes)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, hashes[:k], whole), mth(hashes[k:])]
    return [*ref_subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def ref_proof(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    return [] if m in (0, len(hashes)) else ref_subproof(m, hashes, True)


def build(n: int, salt: bytes = b"") -> tuple[MerkleLog, list[bytes]]:
    hashes = [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]
    log = MerkleLog()
    log.append_many(hashes)
    return log, hashes


def flip(data: bytes, at: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[at % len(out)] ^= 1 << bit
    return bytes(out)


# --- known answers ------------------------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleLog().root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert root(MemoryNodeStore(), 0) == EMPTY_ROOT


def test_roots_of_the_ct_vectors_for_every_size() -> None:
    log = MerkleLog()
    assert log.root() == ROOTS[0]
    for size, data in enumerate(LEAVES, 1):
        log.append_data([data])
        assert log.root() == ROOTS[size], size
    for size in range(len(ROOTS)):
        assert log.root(size) == ROOTS[size]
        assert root(log.store, size) == ROOTS[size]


def test_every_stored_node_equals_the_ct_node_hashes() -> None:
    log = MerkleLog()
    log.append_data(LEAVES)
    for level, row in enumerate(VECTORS["node_hashes_hex_by_level"]):
        keys = [(level, i) for i in range(len(row))]
        assert [h.hex() for h in log.store.get_nodes(keys)] == row


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf_index']}-of-{c['tree_size']}")
def test_inclusion_proofs_equal_the_ct_vectors(case: dict[str, Any]) -> None:
    log = MerkleLog()
    log.append_data(LEAVES)
    index, size = case["leaf_index"], case["tree_size"]
    proof = log.inclusion_proof(index, size)
    assert [p.hex() for p in proof.path] == case["path_hex"]
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof.path, ROOTS[size])


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_proofs_equal_the_ct_vectors(case: dict[str, Any]) -> None:
    log = MerkleLog()
    log.append_data(LEAVES)
    size1, size2 = case["size1"], case["size2"]
    proof = log.consistency_proof(size1, size2)
    assert [p.hex() for p in proof.path] == case["path_hex"]
    verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof.path)


def _inclusion_probes(index: int, size: int, path: list[bytes], root_: bytes, leaf: bytes) -> list[tuple[Any, ...]]:
    probes: list[tuple[Any, ...]] = [
        (index - 1, size, leaf, path, root_),
        (index + 1, size, leaf, path, root_),
        (index ^ 2, size, leaf, path, root_),
        (index, size * 2, leaf, path, root_),
        (index, size // 2, leaf, path, root_),
        (index, size, b"WrongLeaf", path, root_),
        (index, size, leaf, path, EMPTY_ROOT),
        (index, size, leaf, path, SOME_HASH),
        (index, size, leaf, [*path, b""], root_),
        (index, size, leaf, [*path, root_], root_),
        (index, size, leaf, [b"", *path], root_),
        (index, size, leaf, [root_, *path], root_),
    ]
    probes += [(index, size, leaf, [*path[:i], flip(p, 0, 3), *path[i + 1 :]], root_) for i, p in enumerate(path)]
    if path:
        probes.append((index, size, leaf, path[:-1], root_))
    if len(path) > 1:
        probes.append((index, size, leaf, [path[0], SOME_HASH, *path[1:]], root_))
    return probes


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leaf_index']}-of-{c['tree_size']}")
def test_corrupted_inclusion_proofs_fail(case: dict[str, Any]) -> None:
    """The corruptions of transparency-dev/merkle's verifier tests: each one must be refused."""
    index, size = case["leaf_index"], case["tree_size"]
    path = [bytes.fromhex(h) for h in case["path_hex"]]
    probes = _inclusion_probes(index, size, path, ROOTS[size], leaf_hash(LEAVES[index]))
    assert len(probes) >= 12
    for probe in probes:
        with pytest.raises(VerificationError):
            verify_inclusion(*probe)


@pytest.mark.parametrize("case", [c for c in VECTORS["consistency"] if c["path_hex"]], ids=lambda c: f"{c['size1']}")
def test_corrupted_consistency_proofs_fail(case: dict[str, Any]) -> None:
    s1, s2 = case["size1"], case["size2"]
    r1, r2 = ROOTS[s1], ROOTS[s2]
    path = [bytes.fromhex(h) for h in case["path_hex"]]
    probes: list[tuple[Any, ...]] = [
        (s1 - 1, s2, r1, r2, path),
        (s1 + 1, s2, r1, r2, path),
        (s1 ^ 2, s2, r1, r2, path),
        (s1, s2 * 2, r1, r2, path),
        (s1, s2 // 2, r1, r2, path),
        (s1, s2, b"WrongRoot", r2, path),
        (s1, s2, r1, b"WrongRoot", path),
        (s1, s2, r2, r1, path),
        (s1, s2, r1, r2, []),
        (s1, s2, r1, r2, [*path, b""]),
        (s1, s2, r1, r2, [*path, r1]),
        (s1, s2, r1, r2, [*path, r2]),
        (s1, s2, r1, r2, [b"", *path]),
        (s1, s2, r1, r2, [r1, *path]),
        (s1, s2, r1, r2, [r2, *path]),
        (s1, s2, r1, r2, [path[0], *path]),
        (s1, s2, r1, r2, path[:-1]),
    ]
    probes += [(s1, s2, r1, r2, [*path[:i], flip(p, 0, 4), *path[i + 1 :]]) for i, p in enumerate(path)]
    for probe in probes:
        with pytest.raises(VerificationError):
            verify_consistency(*probe)


def test_trivial_consistency_cases() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    cases: list[tuple[Any, ...]] = [
        (3, 3, ROOTS[3], ROOTS[4], []),  # same size, two roots: a fork
        (3, 3, ROOTS[3], ROOTS[3], [EMPTY_ROOT]),
        (0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT]),
        (0, 1, ROOTS[1], ROOTS[1], []),  # size 0 must have the empty root
        (2, 1, ROOTS[2], ROOTS[1], []),  # shrinking
        (1, 2, ROOTS[1], ROOTS[2], []),
        (-1, 2, ROOTS[1], ROOTS[2], []),
    ]
    for args in cases:
        with pytest.raises(VerificationError):
            verify_consistency(*args)


def test_inclusion_edge_cases() -> None:
    one = leaf_hash(b"data")
    verify_inclusion(0, 1, one, [], one)
    empty: list[bytes] = []
    for args in [(0, 0, one, empty, one), (1, 1, one, empty, one), (0, 1, one, empty, b""), (0, 1, b"", empty, one)]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    with pytest.raises(VerificationError, match="outside"):
        root_from_inclusion_proof(2, 1, one, [])


# --- an independent implementation: pymerkle 7 -----------------------------------------------------------------


def test_roots_equal_pymerkle_for_every_size_up_to_300() -> None:
    """pymerkle's defaults (sha256, security on) prefix leaves with 0x00 and nodes with 0x01, as RFC 9162 does."""
    other = InmemoryTree(algorithm="sha256")
    assert other.security
    ours = CompactRange()
    store = MemoryNodeStore()
    entries = [f"entry {i} 送达".encode() for i in range(300)]
    assert other.get_root(0) == ours.root() == EMPTY_ROOT
    for size, data in enumerate(entries, 1):
        other.append_entry(data)
        store.put_nodes(ours.append(leaf_hash(data)))
        assert ours.root() == other.get_root(), size
    for size in range(301):
        assert root(store, size) == other.get_root(size), size


# --- every (m, n) up to 64 ------------------------------------------------------------------------------------

N = 64
LOG, HASHES = build(N)


def test_every_inclusion_proof_up_to_64_matches_the_rfc_and_verifies() -> None:
    for n in range(1, N + 1):
        tree_root = LOG.root(n)
        assert tree_root == mth(HASHES[:n])
        for m in range(n):
            proof = LOG.inclusion_proof(m, n)
            assert list(proof.path) == ref_path(m, HASHES[:n]), (m, n)
            verify_inclusion(m, n, HASHES[m], proof.path, tree_root)
            # any changed byte of the leaf, the root or a path element fails
            at = m * 7 + n
            with pytest.raises(VerificationError):
                verify_inclusion(m, n, flip(HASHES[m], at), proof.path, tree_root)
            with pytest.raises(VerificationError):
                verify_inclusion(m, n, HASHES[m], proof.path, flip(tree_root, at, 7))
            for i in range(len(proof.path)):
                bad = list(proof.path)
                bad[i] = flip(bad[i], at + i, i % 8)
                with pytest.raises(VerificationError):
                    verify_inclusion(m, n, HASHES[m], bad, tree_root)
            if n > 1:  # another leaf's hash at this index fails
                with pytest.raises(VerificationError):
                    verify_inclusion(m, n, HASHES[(m + 1) % n], proof.path, tree_root)


def test_every_consistency_proof_up_to_64_matches_the_rfc_and_verifies() -> None:
    for n in range(1, N + 1):
        for m in range(n + 1):
            proof = LOG.consistency_proof(m, n)
            assert list(proof.path) == ref_proof(m, HASHES[:n]), (m, n)
            r1, r2 = LOG.root(m), LOG.root(n)
            verify_consistency(m, n, r1, r2, proof.path)
            if m in (0, n):
                continue
            at = m * 5 + n
            with pytest.raises(VerificationError):
                verify_consistency(m, n, flip(r1, at), r2, proof.path)
            with pytest.raises(VerificationError):
                verify_consistency(m, n, r1, flip(r2, at, 5), proof.path)
            for i in range(len(proof.path)):
                bad = list(proof.path)
                bad[i] = flip(bad[i], at + i, i % 8)
                with pytest.raises(VerificationError):
                    verify_consistency(m, n, r1, r2, bad)


def test_every_byte_of_one_proof_matters() -> None:
    n, m = 53, 21
    incl = LOG.inclusion_proof(m, n)
    cons = LOG.consistency_proof(m, n)
    r1, r2 = LOG.root(m), LOG.root(n)
    for i, element in enumerate(incl.path):
        for at in range(32):
            bad = list(incl.path)
            bad[i] = flip(element, at)
            with pytest.raises(VerificationError):
                verify_inclusion(m, n, HASHES[m], bad, r2)
    for i, element in enumerate(cons.path):
        for at in range(32):
            bad = list(cons.path)
            bad[i] = flip(element, at)
            with pytest.raises(VerificationError):
                verify_consistency(m, n, r1, r2, bad)


def test_a_rewritten_history_fails_consistency_with_the_old_root() -> None:
    """A log that changed leaf 10 and regrew cannot prove consistency with a checkpoint taken before."""
    old_root = LOG.root(20)
    hashes = list(HASHES)
    hashes[10] = leaf_hash(b"rewritten")
    forged = MerkleLog()
    forged.append_many(hashes)
    proof = forged.consistency_proof(20, N)
    with pytest.raises(VerificationError, match="old root"):
        verify_consistency(20, N, old_root, forged.root(), proof.path)


# --- the store and the compact range ---------------------------------------------------------------------------


def test_compact_range_rebuilt_from_the_store_continues_identically() -> None:
    store = MemoryNodeStore()
    first = CompactRange()
    store.put_nodes(first.append_many(HASHES[:37]))
    again = CompactRange.from_store(store, 37)
    assert again.hashes == first.hashes
    assert again.size == 37
    nodes = again.append_many(HASHES[37:])
    store.put_nodes(nodes)
    assert again.root() == LOG.root(N)
    assert len(again.hashes) == bin(N).count("1")


def test_append_many_returns_exactly_the_new_complete_subtrees() -> None:
    cr = CompactRange()
    nodes = cr.append_many(HASHES[:8])
    assert sorted((level, index) for level, index, _ in nodes) == sorted(
        [(0, i) for i in range(8)] + [(1, i) for i in range(4)] + [(2, 0), (2, 1), (3, 0)]
    )
    assert (3, 0, mth(HASHES[:8])) in nodes
    more = cr.append_many(HASHES[8:11])
    assert [(lv, ix) for lv, ix, _ in more] == [(0, 8), (0, 9), (1, 4), (0, 10)]


def test_proofs_need_only_logarithmic_reads() -> None:
    class Counting(MemoryNodeStore):
        calls = 0
        keys = 0

        def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes]:
            Counting.calls += 1
            Counting.keys += len(keys)
            return super().get_nodes(keys)

    store = Counting()
    cr = CompactRange()
    store.put_nodes(cr.append_many(leaf_hash(i.to_bytes(4, "big")) for i in range(5000)))
    Counting.calls = Counting.keys = 0
    inclusion_proof(store, 1234, 4999)
    consistency_proof(store, 1001, 4999)
    root(store, 4321)
    assert Counting.calls == 3
    assert Counting.keys <= 3 * 2 * 13  # 2 log2(5000) per call at most


def test_memory_store_refuses_changes_and_gaps() -> None:
    store = MemoryNodeStore()
    store.put_nodes([(0, 0, HASHES[0]), (0, 1, HASHES[1])])
    store.put_nodes([(0, 1, HASHES[1])])  # the same value again is fine (a replayed batch)
    with pytest.raises(ValueError, match="another hash"):
        store.put_nodes([(0, 1, HASHES[2])])
    with pytest.raises(ValueError, match="gap"):
        store.put_nodes([(0, 5, HASHES[2])])
    with pytest.raises(KeyError):
        store.get_nodes([(0, 2)])
    with pytest.raises(KeyError):
        store.get_nodes([(4, 0)])
    assert store.count(0) == 2
    assert store.count(9) == 0


def test_log_refuses_sizes_beyond_its_leaves() -> None:
    log, _ = build(10)
    with pytest.raises(ValueError, match="outside"):
        log.inclusion_proof(3, 11)
    with pytest.raises(ValueError, match="outside"):
        log.consistency_proof(3, 11)
    with pytest.raises(ValueError, match="not in a tree"):
        log.inclusion_proof(10, 10)
    with pytest.raises(ValueError, match="no consistency"):
        log.consistency_proof(5, 4)
    with pytest.raises(ValueError, match="32 bytes"):
        log.append_many([b"short"])
    assert log.size == 10  # a refused batch leaves the log as it was
    assert log.leaf_hash(9) == leaf_hash((9).to_bytes(4, "big"))


def test_compact_range_checks_its_shape() -> None:
    with pytest.raises(ValueError, match="holds 2 hashes"):
        CompactRange(3, [EMPTY_ROOT])


def test_perfect_subtrees_tile_the_range() -> None:
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_subtrees(8, 13) == [(2, 2), (0, 12)]
    assert perfect_subtrees(6, 16) == [(1, 3), (3, 1)]
    assert perfect_subtrees(5, 5) == []


def test_range_helpers_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError, match="not in a tree of 0 leaves"):
        inclusion_ranges(0, 0)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_ranges(3, 2)
    assert consistency_ranges(0, 9) == [] == consistency_ranges(9, 9)


def test_proofs_round_trip_through_json() -> None:
    incl = LOG.inclusion_proof(5, 40)
    cons = LOG.consistency_proof(7, 40)
    assert InclusionProof.from_dict(json.loads(json.dumps(incl.to_dict()))) == incl
    assert ConsistencyProof.from_dict(json.loads(json.dumps(cons.to_dict()))) == cons
    incl.verify(HASHES[5], LOG.root(40))
    cons.verify(LOG.root(7), LOG.root(40))
    for bad in [
        {"leaf_index": -1, "tree_size": 3, "path": []},
        {"leaf_index": 0, "tree_size": "3", "path": []},
        {"leaf_index": 0, "tree_size": 3, "path": "AAAA"},
        {"leaf_index": 0, "tree_size": 3, "path": ["not base64!"]},
        [1, 2],
    ]:
        with pytest.raises(VerificationError):
            InclusionProof.from_dict(bad)


# --- properties ------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_batching_does_not_change_nodes_or_roots(batches: list[int]) -> None:
    total = sum(batches)
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(total)]
    one_by_one = CompactRange()
    nodes_single = [n for h in hashes for n in one_by_one.append(h)]
    batched = CompactRange()
    nodes_batched: list[tuple[int, int, bytes]] = []
    start = 0
    for size in batches:
        nodes_batched += batched.append_many(hashes[start : start + size])
        start += size
    assert nodes_batched == nodes_single
    assert batched.root() == one_by_one.root() == mth(hashes)


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=700), st.data())
def test_random_proofs_verify(size: int, data: st.DataObject) -> None:
    log, hashes = build(size, b"p")
    m = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    log.inclusion_proof(m, size).verify(hashes[m], log.root())
    log.consistency_proof(old, size).verify(log.root(old), log.root())


def test_caching_store_serves_repeated_reads_from_memory_and_stays_bounded() -> None:
    inner = MemoryNodeStore()
    cr = CompactRange()
    inner.put_nodes(cr.append_many(HASHES))
    cached = CachingNodeStore(inner, max_nodes=10)
    proof = inclusion_proof(cached, 17, N)
    assert proof == LOG.inclusion_proof(17, N)
    assert cached.misses == len(proof.path)
    assert inclusion_proof(cached, 17, N) == proof
    assert cached.hits == len(proof.path)
    for m in range(N):  # many different reads: the cache never grows past its bound
        assert inclusion_proof(cached, m, N) == LOG.inclusion_proof(m, N)
        assert len(cached._cache) <= 10
    cached.put_nodes([(0, N, leaf_hash(b"next"))])  # writes go through, uncached
    assert inner.count(0) == N + 1
    assert (0, N) not in cached._cache
    cached.clear()
    assert not cached._cache


@pytest.mark.parametrize("dense_from", [1, 3, 4])
def test_sparse_store_gives_the_same_proofs_with_fewer_nodes(dense_from: int) -> None:
    inner = MemoryNodeStore()
    sparse = SparseNodeStore(inner, dense_from=dense_from)
    cr = CompactRange()
    for start in range(0, N, 5):  # appends in uneven batches, as commits come
        sparse.put_nodes(cr.append_many(HASHES[start : start + 5]))
    assert inner.count(0) == N
    assert all(inner.count(level) == 0 for level in range(1, dense_from))
    assert inner.count(dense_from) == N >> dense_from
    again = CompactRange.from_store(sparse, 37)
    assert again.root() == LOG.root(37)
    for n in range(1, N + 1):
        assert root(sparse, n) == LOG.root(n)
        for m in range(0, n, 3):
            assert inclusion_proof(sparse, m, n) == LOG.inclusion_proof(m, n)
            assert consistency_proof(sparse, m, n) == LOG.consistency_proof(m, n)


def test_sparse_store_needs_the_leaves() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SparseNodeStore(MemoryNodeStore(), dense_from=0)
