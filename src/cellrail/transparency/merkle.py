"""RFC 9162 Merkle tree roots and proofs over stored perfect subtrees.

The ledger keeps, for every aligned perfect subtree that is complete, its hash (level 0 holds the leaves;
level ``l`` index ``i`` covers leaves ``[i·2^l, (i+1)·2^l)``). Appending a leaf stores O(log n) entries
(:func:`nodes_to_store`), and every root or proof is then O(log n) lookups, however long the ledger grows:
RFC 9162 §2.1.1 splits a tree at the largest power of two below its size, so each subtree the definitions
need is either one stored perfect subtree or a short right edge of them.

The hash functions come from :mod:`cellrail.transparency.verifier` so that the code which builds proofs and
the code an auditor runs to check them share a single definition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Protocol

from cellrail.transparency.verifier import EMPTY_ROOT, HASH_SIZE, ProofError, leaf_hash, node_hash

__all__ = [
    "EMPTY_ROOT",
    "MemoryStore",
    "SubtreeStore",
    "consistency_proof",
    "frontier",
    "frontier_read_by_append",
    "inclusion_proof",
    "inclusion_proof_keys",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_to_store",
    "range_hash",
    "range_keys",
    "root",
    "root_from_leaves",
]


class SubtreeStore(Protocol):
    """Where the hashes of complete, aligned perfect subtrees are kept (leaves at level 0)."""

    def perfect(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree over leaves ``[index·2^level, (index+1)·2^level)``."""
        ...


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2): where RFC 9162 §2.1.1 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def frontier(size: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the perfect subtrees that make up leaves ``[0, size)``, largest first.

    One per set bit of ``size`` (the compact range). They are all that appending from ``size`` on needs to look
    up (:func:`nodes_to_store` reads left siblings only, and later appends find the nodes stored before them)
    and all that :func:`root` reads.
    """
    if size < 0:
        raise ValueError(f"tree size must not be negative ({size})")
    return [(level, (size >> level) - 1) for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def frontier_read_by_append(size: int, count: int) -> list[tuple[int, int]]:
    """The subtrees of :func:`frontier` that appending ``count`` leaves to a tree of ``size`` leaves reads.

    :func:`nodes_to_store` reads a frontier subtree only when an append completes its parent, that is when the
    leaf count passes the next multiple of twice the subtree's size; the others stay on the frontier. One append
    to an even-sized tree reads none.
    """
    if count < 0:
        raise ValueError(f"cannot append a negative number of leaves ({count})")
    end = size + count
    return [(level, index) for level, index in frontier(size) if end >> (level + 1) != size >> (level + 1)]


def nodes_to_store(size: int, leaf: bytes, lookup: Callable[[int, int], bytes]) -> list[tuple[int, int, bytes]]:
    """The ``(level, index, hash)`` entries to store when ``leaf`` is appended as leaf number ``size``.

    That is the leaf itself and every perfect subtree it completes: while the new node is a right child, its
    left sibling (already stored, fetched with ``lookup(level, index)``) and it make the parent. O(log n).
    """
    if size < 0:
        raise ValueError(f"tree size must not be negative ({size})")
    if len(leaf) != HASH_SIZE:
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
    entries = [(0, size, leaf)]
    level, index, digest = 0, size, leaf
    while index & 1:
        digest = node_hash(lookup(level, index - 1), digest)
        level, index = level + 1, index >> 1
        entries.append((level, index, digest))
    return entries


def _perfect_hash(store: SubtreeStore, level: int, start: int) -> bytes:
    """MTH of the ``2^level`` leaves from ``start``: one lookup when aligned, otherwise built from halves."""
    if start & ((1 << level) - 1) == 0:
        return store.perfect(level, start >> level)
    half = 1 << (level - 1)
    return node_hash(_perfect_hash(store, level - 1, start), _perfect_hash(store, level - 1, start + half))


def range_hash(store: SubtreeStore, start: int, end: int) -> bytes:
    """MTH(D[start:end]) as defined by RFC 9162 §2.1.1.

    The tree over ``n`` leaves is its perfect subtrees of sizes the binary digits of ``n``, largest first,
    joined from the right (the split at the largest power of two < n, applied repeatedly). When ``start`` is a
    multiple of the largest of them — always true for roots and for every subtree RFC 9162's proofs use — each
    is one stored subtree, so this is at most log2(n) lookups; an unaligned range is computed correctly but
    costs up to O(n) lookups, because its perfect subtrees are not the stored ones.
    """
    if start < 0 or end < start:
        raise ValueError(f"bad leaf range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    pieces = []
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            pieces.append(_perfect_hash(store, level, start))
            start += 1 << level
    digest = pieces.pop()
    while pieces:
        digest = node_hash(pieces.pop(), digest)
    return digest


def root(store: SubtreeStore, size: int) -> bytes:
    """The root hash of the first ``size`` leaves (RFC 9162 §2.1.1; the empty tree's is SHA-256 of "")."""
    return range_hash(store, 0, size)


def _range_keys(start: int, end: int) -> list[tuple[int, int]]:
    """The stored subtrees that make up an aligned range (as ``range_hash`` reads them)."""
    keys = []
    n = end - start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[a, b)`` of the siblings on the audit path of leaf ``index``, root side first.

    ``inclusion_proof`` is ``[range_hash(a, b) for (a, b) in reversed(ranges)]``; a batch of proofs in one tree
    shares most of its upper ranges, so a caller can hash each distinct range once.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges


def range_keys(start: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) of the stored subtrees ``range_hash(start, end)`` reads, for an aligned range."""
    return _range_keys(start, end)


def inclusion_proof_keys(index: int, size: int) -> list[tuple[int, int]]:
    """The (level, index) of every stored subtree that ``inclusion_proof(index, size)`` reads: lets a batch of
    proofs fetch their nodes together."""
    return [key for a, b in inclusion_proof_ranges(index, size) for key in _range_keys(a, b)]


def inclusion_proof(
    store: SubtreeStore, index: int, size: int, memo: dict[tuple[int, int], bytes] | None = None
) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of ``size`` leaves: PATH(m, D[n]) of RFC 9162 §2.1.3.1.

    Walks from the root down, collecting the sibling subtree at each split, and returns them leaf-side first.
    Only the first sibling to the right of the path can be an imperfect subtree, so this is O(log n) lookups.
    ``memo`` (shared by a batch of proofs in one tree) keeps sibling hashes, most of which proofs share.
    An index outside the tree raises :class:`ProofError`.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    siblings = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        a, b = (lo + k, hi) if index < lo + k else (lo, lo + k)
        if memo is None:
            siblings.append(range_hash(store, a, b))
        else:
            digest = memo.get((a, b))
            if digest is None:
                digest = memo[(a, b)] = range_hash(store, a, b)
            siblings.append(digest)
        if index < lo + k:
            hi = lo + k
        else:
            lo += k
    siblings.reverse()
    return siblings


def consistency_proof(store: SubtreeStore, size1: int, size2: int) -> list[bytes]:
    """The proof that the first ``size1`` leaves are a prefix of the first ``size2``: PROOF(m, D[n]) of
    RFC 9162 §2.1.4.1, with SUBPROOF's recursion unrolled into a walk down the new tree.

    Equal sizes give the empty proof. Sizes for which no proof exists raise :class:`ProofError` (a
    ``ValueError``), so a caller comparing two checkpoints reports a shrunken log like any failed proof:
    ``size1 > size2``, and ``size1 == 0 < size2`` (RFC 9162 defines no proof from the empty tree, and the
    verifier rejects one). O(log n) lookups.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"no consistency proof from tree size {size1} to tree size {size2}")
    if size1 == size2:
        return []
    if size1 == 0:
        raise ProofError("no consistency proof from the empty tree: every tree extends it")
    siblings = []
    lo, hi, whole = 0, size2, True  # ``whole``: SUBPROOF's b, still on the left edge of the new tree.
    while hi != size1:
        k = _split(hi - lo)
        if size1 - lo <= k:
            siblings.append(range_hash(store, lo + k, hi))
            hi = lo + k
        else:
            siblings.append(range_hash(store, lo, lo + k))
            lo += k
            whole = False
    # SUBPROOF(m, D[m], b): nothing on the left edge (the verifier has the old root), else that subtree.
    proof = [] if whole else [range_hash(store, lo, hi)]
    proof.extend(reversed(siblings))
    return proof


_CHUNK_LEVEL = 14  # root_from_leaves hashes 16,384 leaves at a time, level by level.


def _chunk_root(level_hashes: list[bytes]) -> bytes:
    """MTH of a non-empty list of leaf hashes, pairing level by level and lifting an odd last node unchanged.

    That is the same tree as RFC 9162 §2.1.1's (both consist of the perfect subtrees for the binary digits of
    n, joined from the right), but it runs as list comprehensions, several times faster in CPython than a loop.
    """
    sha256 = hashlib.sha256
    while len(level_hashes) > 1:
        pairs = zip(level_hashes[::2], level_hashes[1::2], strict=False)  # an odd last node is lifted below
        paired = [sha256(b"\x01" + left + right).digest() for left, right in pairs]
        if len(level_hashes) & 1:
            paired.append(level_hashes[-1])
        level_hashes = paired
    return level_hashes[0]


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """The root over all the given leaf hashes, computed from scratch in O(n) time and O(log n) memory.

    For full re-verification: it trusts no stored subtree. Leaves stream in chunks of 2^14; each full chunk is
    a perfect subtree pushed onto a compact range (a stack of perfect subtrees of strictly decreasing size,
    merged like a binary counter), and the root joins the stack from the right, ending with the last chunk.
    """
    chunk_size = 1 << _CHUNK_LEVEL
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    tail: bytes | None = None
    for chunk in _chunks(leaf_hashes, chunk_size):
        if any(len(item) != HASH_SIZE for item in chunk):
            raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
        digest = _chunk_root(chunk)
        if len(chunk) < chunk_size:
            tail = digest
            break
        level = _CHUNK_LEVEL
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
        stack.append((level, digest))
    if tail is None:
        if not stack:
            return EMPTY_ROOT
        tail = stack.pop()[1]
    while stack:
        tail = node_hash(stack.pop()[1], tail)
    return tail


class MemoryStore:
    """A :class:`SubtreeStore` in memory, filled through :func:`nodes_to_store` exactly as the database is.

    For tests and for verification passes that rebuild the tree from the ledger's leaves.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for item in leaf_hashes:
            self.append(item)

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash and store the perfect subtrees it completes."""
        for level, _index, digest in nodes_to_store(self.size, leaf, self.perfect):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(digest)  # subtrees complete left to right, in index order

    def perfect(self, level: int, index: int) -> bytes:
        """The stored hash of a complete perfect subtree; ``KeyError`` if it is not (yet) complete."""
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise KeyError(f"no complete perfect subtree at level {level}, index {index}")
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all of them)."""
        return root(self, self.size if size is None else size)
