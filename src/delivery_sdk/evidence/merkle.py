"""An append-only RFC 9162 Merkle tree over a store of perfect-subtree hashes (pure; hashlib only).

The tree of ``n`` leaves is the Merkle Tree Hash of RFC 9162 §2.1.1. What is kept is every **perfect
subtree**: node ``(level, index)`` is the root of the ``2**level`` leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a node never changes
once its last leaf is appended, so it can be written once, in the same transaction as the events that
complete it, and read back after a restart: the root at any size, an inclusion proof or a consistency
proof at 10^6 leaves costs O(log n) node reads (one batched :meth:`NodeStore.get_nodes` call) and no
rehashing of the log.

- :class:`CompactRange` is the O(log n) state an appender needs (the "frontier": one perfect subtree per
  set bit of the size). :meth:`CompactRange.append_many` returns the new nodes to persist; it works on
  the range in place, so append to a :meth:`~CompactRange.copy` and keep it only once the nodes committed.
- :class:`NodeStore` is the storage interface (:class:`MemoryNodeStore` here; SQL stores implement the
  same two methods over a ``(level, idx) -> hash`` table); :class:`CachingNodeStore` keeps the nodes
  proofs share (the upper levels) in memory in front of one; :class:`SparseNodeStore` stores only the
  leaves and the upper levels, and recomputes the few nodes between them when a proof needs them.
- :func:`root`, :func:`inclusion_proof` and :func:`consistency_proof` read any size up to what is stored,
  so old checkpoints stay provable.
- :class:`MerkleLog` ties the three together for callers that do not need their own transactions.

Verification lives in :mod:`delivery_sdk.evidence.verify`, which needs nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Protocol, cast

from .verify import EMPTY_ROOT, HASH_SIZE, ConsistencyProof, InclusionProof, leaf_hash, node_hash

_sha256 = hashlib.sha256

__all__ = [
    "EMPTY_ROOT",
    "CachingNodeStore",
    "CompactRange",
    "MemoryNodeStore",
    "MerkleLog",
    "Node",
    "NodeKey",
    "NodeStore",
    "SparseNodeStore",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root",
]

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree: leaves ``[index << level, (index + 1) << level)``."""

Node = tuple[int, int, bytes]
"""``(level, index, hash)``."""


class NodeStore(Protocol):
    """Where perfect-subtree hashes live. Nodes are immutable: a key is written once, with one value."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Sequence[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        ...

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        ...


class MemoryNodeStore:
    """A :class:`NodeStore` in memory: one ``bytearray`` per level, 32 bytes per node (64 MB at 10^6 leaves)."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        levels = self._levels
        out = []
        for level, index in keys:
            start = index * HASH_SIZE
            if level >= len(levels) or index < 0 or start + HASH_SIZE > len(levels[level]):
                raise KeyError((level, index))
            out.append(bytes(levels[level][start : start + HASH_SIZE]))
        return out

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        levels = self._levels
        for level, index, digest in nodes:
            while level >= len(levels):
                levels.append(bytearray())
            row = levels[level]
            start = index * HASH_SIZE
            if start == len(row):
                row += digest
            elif start + HASH_SIZE <= len(row):
                if row[start : start + HASH_SIZE] != digest:
                    raise ValueError(f"node {(level, index)} is already stored with another hash")
            else:
                raise ValueError(f"node {(level, index)} leaves a gap: nodes are appended in order")

    def count(self, level: int = 0) -> int:
        """How many nodes of ``level`` are stored (level 0: the number of leaves)."""
        return len(self._levels[level]) // HASH_SIZE if level < len(self._levels) else 0


class CachingNodeStore:
    """A read-through cache in front of another :class:`NodeStore` (nodes never change, so hits stay right).

    Only what :meth:`get_nodes` read is cached, never what :meth:`put_nodes` writes (it may roll back).
    Reading nodes inside a write transaction that then rolls back would cache them: call :meth:`clear`
    after a rollback. At most ``max_nodes`` are kept; the oldest go first. With ``min_level`` only nodes of
    that level and up are kept: the upper levels are the ones every proof shares, the lower ones are
    rarely read twice and would only push them out.
    """

    def __init__(self, inner: NodeStore, max_nodes: int = 1 << 16, min_level: int = 0) -> None:
        self.inner = inner
        self.max_nodes = max_nodes
        self.min_level = min_level
        self._cache: dict[NodeKey, bytes] = {}
        self.hits = 0
        self.misses = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        cache = self._cache
        out = [cache.get(key) for key in keys]
        if None not in out:
            self.hits += len(keys)
            return cast("list[bytes]", out)
        missing = list(dict.fromkeys(key for key, value in zip(keys, out, strict=True) if value is None))
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        fetched = dict(zip(missing, self.inner.get_nodes(missing), strict=True))
        result = [fetched[key] if value is None else value for key, value in zip(keys, out, strict=True)]
        floor = self.min_level
        keep = {key: value for key, value in fetched.items() if key[0] >= floor} if floor else fetched
        overflow = len(cache) + len(keep) - self.max_nodes
        if overflow > 0:
            for key in list(itertools.islice(cache, overflow)):
                del cache[key]
        cache.update(itertools.islice(keep.items(), self.max_nodes))
        return result

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        self.inner.put_nodes(nodes)

    def clear(self) -> None:
        """Forget every cached node."""
        self._cache.clear()


class SparseNodeStore:
    """Keeps the leaves and the levels from ``dense_from`` up; recomputes the levels in between from leaves.

    With ``dense_from=4`` a log writes one leaf hash per event plus one node per 16 leaves (instead of about
    two nodes per leaf), and a proof reads at most ``2 ** (dense_from - 1)`` more leaf hashes per missing
    level (in the same batched read). The leaf hashes can live beside the events (a column of the event
    row) and the rest in a node table: the ``inner`` store decides where each level goes.
    """

    def __init__(self, inner: NodeStore, dense_from: int = 4) -> None:
        if dense_from < 1:
            raise ValueError("dense_from is at least 1 (level 0, the leaves, is always stored)")
        self.inner = inner
        self.dense_from = dense_from

    def _derived(self, level: int) -> bool:
        return 0 < level < self.dense_from

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise ``KeyError`` naming a key that is not stored."""
        dense_from = self.dense_from
        if all(not 0 < level < dense_from for level, _ in keys):
            return list(self.inner.get_nodes(keys))
        wanted: list[NodeKey] = []
        spans: list[int] = []  # per key: how many leaves it is recomputed from (0: read as stored)
        for level, index in keys:
            if 0 < level < dense_from:
                first = index << level
                wanted.extend([(0, j) for j in range(first, first + (1 << level))])
                spans.append(1 << level)
            else:
                wanted.append((level, index))
                spans.append(0)
        found = self.inner.get_nodes(wanted)
        out: list[bytes] = []
        pos = 0
        for span in spans:
            if span:
                out.append(_perfect_root(list(found[pos : pos + span])))
                pos += span
            else:
                out.append(found[pos])
                pos += 1
        return out

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        """Store new nodes (as returned by :meth:`CompactRange.append_many`)."""
        self.inner.put_nodes(node for node in nodes if not self._derived(node[0]))


def _perfect_root(hashes: list[bytes]) -> bytes:
    sha = _sha256
    while len(hashes) > 1:
        hashes = [sha(b"\x01" + hashes[i] + hashes[i + 1]).digest() for i in range(0, len(hashes), 2)]
    return hashes[0]


def perfect_subtrees(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees that tile leaves ``[start, end)``, left to right, each as large as alignment allows.

    For a node of an RFC 9162 tree (``[0, n)`` and every subtree in a proof) the sizes come out in
    decreasing order, and the node's hash is the right fold of their hashes (see :func:`_fold`).
    """
    keys = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    sha = _sha256
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = sha(b"\x01" + left + h).digest()
    return h


def _range_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The Merkle Tree Hash of each ``[start, end)`` in ``ranges``, from one batched read.

    The ranges of a proof are disjoint, so their tilings share no node: no key is asked for twice.
    """
    keys: list[NodeKey] = []
    ends: list[int] = []
    for start, end in ranges:
        width = end - start
        if width > 0 and not width & (width - 1) and not start & (width - 1):  # a perfect subtree itself
            level = width.bit_length() - 1
            keys.append((level, start >> level))
        else:
            keys.extend(perfect_subtrees(start, end))
        ends.append(len(keys))
    found = store.get_nodes(keys)
    out: list[bytes] = []
    begin = 0
    for end in ends:
        out.append(found[begin] if end - begin == 1 else _fold(found[begin:end]))
        begin = end
    return out


def root(store: NodeStore, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves (``SHA-256("")`` for 0)."""
    if size < 0:
        raise ValueError("a tree size is never negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes(store, [(0, size)])[0]


def inclusion_ranges(leaf_index: int, tree_size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form the audit path PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf upwards."""
    if not 0 <= leaf_index < tree_size:
        raise ValueError(f"leaf {leaf_index} is not in a tree of {tree_size} leaves")
    ranges = []
    start, end = 0, tree_size
    while end - start > 1:
        k = 1 << ((end - start - 1).bit_length() - 1)  # the largest power of two below end - start
        if leaf_index < start + k:
            ranges.append((start + k, end))
            end = start + k
            break
        ranges.append((start, start + k))
        start += k
    # [start, end) is now a perfect subtree: the rest of the path are its sub-subtrees' siblings
    k = end - start
    while k > 1:
        k >>= 1
        if leaf_index < start + k:
            ranges.append((start + k, start + 2 * k))
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (empty when m is 0 or n)."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []
    ranges = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = 1 << ((end - start - 1).bit_length() - 1)  # the largest power of two below end - start
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:  # SUBPROOF(m, D[m], false) = [MTH(D[m])]
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof(store: NodeStore, leaf_index: int, tree_size: int) -> InclusionProof:
    """The audit path of leaf ``leaf_index`` (0-based) in the tree of ``tree_size`` leaves."""
    path = _range_hashes(store, inclusion_ranges(leaf_index, tree_size))
    return InclusionProof(leaf_index, tree_size, tuple(path))


def consistency_proof(store: NodeStore, size1: int, size2: int) -> ConsistencyProof:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2`` leaves."""
    path = _range_hashes(store, consistency_ranges(size1, size2))
    return ConsistencyProof(size1, size2, tuple(path))


class CompactRange:
    """The right edge of an append-only tree: one perfect-subtree hash per set bit of ``size``, largest first."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of {size} leaves holds {size.bit_count()} hashes, not {len(hashes)}")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_store(cls, store: NodeStore, size: int) -> CompactRange:
        """Rebuild the range of the first ``size`` leaves from stored nodes (O(log n) reads, no hashing)."""
        keys = perfect_subtrees(0, size)
        return cls(size, list(store.get_nodes(keys)) if keys else [])

    @property
    def size(self) -> int:
        """The number of leaves the range covers."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The hashes of the range's perfect subtrees, largest first."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        """An independent copy of the range."""
        return CompactRange(self._size, self._hashes)

    def root(self) -> bytes:
        """The root hash of the tree the range covers (the empty tree's hash for no leaves)."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def append(self, leaf: bytes) -> list[Node]:
        """Append one leaf *hash*; return the nodes it completes (the leaf itself first)."""
        return self.append_many((leaf,))

    def append_many(self, leaves: Iterable[bytes], omit_below: int = 1) -> list[Node]:
        """Append leaf *hashes* in order; return every node they complete, for the store to write.

        The nodes come in creation order (a node after its children), levels ascending per leaf. Nodes of
        levels ``1 .. omit_below - 1`` are computed but not returned: pass a :class:`SparseNodeStore`'s
        ``dense_from`` to get only what it keeps (the leaves are always returned).
        """
        hashes = self._hashes
        size = self._size
        nodes: list[Node] = []
        add = nodes.append
        pop = hashes.pop
        push = hashes.append
        sha = _sha256
        for h in leaves:
            if len(h) != HASH_SIZE:
                raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(h)}")
            add((0, size, h))
            if size & 1:
                level = 0
                index = size
                while index & 1:
                    h = sha(b"\x01" + pop() + h).digest()
                    level += 1
                    index >>= 1
                    if level >= omit_below:
                        add((level, index, h))
            push(h)
            size += 1
        self._size = size
        return nodes


class MerkleLog:
    """A tree and its store together: append, then ask for roots and proofs at any stored size.

    Callers that write nodes in their own transaction use :class:`CompactRange` and the module functions
    instead (see the module docstring).
    """

    def __init__(self, store: NodeStore | None = None, size: int = 0) -> None:
        self.store: NodeStore = store if store is not None else MemoryNodeStore()
        self._range = CompactRange.from_store(self.store, size)

    @property
    def size(self) -> int:
        """The number of leaves in the log."""
        return self._range.size

    def append_data(self, inputs: Iterable[bytes]) -> list[Node]:
        """Hash leaf inputs (``SHA-256(0x00 || input)``) and append them."""
        return self.append_many([leaf_hash(data) for data in inputs])

    def append_many(self, leaves: Iterable[bytes]) -> list[Node]:
        """Append leaf hashes, write the nodes they complete, and return those nodes."""
        staged = self._range.copy()
        nodes = staged.append_many(leaves)
        self.store.put_nodes(nodes)
        self._range = staged
        return nodes

    def root(self, size: int | None = None) -> bytes:
        """The root hash at ``size`` (default: the current size)."""
        if size is None or size == self.size:
            return self._range.root()
        self._check(size)
        return root(self.store, size)

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index`` (0-based)."""
        self._check(index + 1)
        return self.store.get_nodes([(0, index)])[0]

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        """The RFC 9162 inclusion proof of leaf ``leaf_index`` in the tree of ``tree_size`` leaves (default: all)."""
        size = self.size if tree_size is None else tree_size
        self._check(size)
        return inclusion_proof(self.store, leaf_index, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        """The RFC 9162 consistency proof between the trees of ``size1`` and ``size2`` leaves (default: all)."""
        size = self.size if size2 is None else size2
        self._check(size)
        return consistency_proof(self.store, size1, size)

    def _check(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside the log's {self.size} leaves")
