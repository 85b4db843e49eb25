"""The Merkle tree of RFC 9162 §2.1: hashes, proofs, and the checks a verifier makes.

Leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right), the empty tree's
hash = SHA-256(""). A tree of n leaves splits at k, the largest power of two below n.

Proofs are built from *perfect* subtrees only (2**level leaves starting at a multiple of
2**level), which is what `ledger` stores: node (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level). Every subtree a proof names, MTH(D[a:b]), is the fold
of at most log2(n) perfect ones (`pieces`), so a proof costs O(log n) stored hashes. The callers
give a `lookup` from (level, index) to a hash; `tree_nodes` makes one from a list of leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

Lookup = Callable[[int, int], bytes]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """k: the largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def pieces(a: int, b: int) -> list[tuple[int, int]]:
    """The perfect subtrees, largest first, that D[a:b] folds from (a must be a subtree's start)."""
    out = []
    while a < b:
        level = (a & -a).bit_length() - 1 if a else (b - a).bit_length() - 1
        while a + (1 << level) > b:
            level -= 1
        out.append((level, a >> level))
        a += 1 << level
    return out


def subtree(a: int, b: int, lookup: Lookup) -> bytes:
    """MTH(D[a:b]) from stored perfect subtrees: H(p1, H(p2, … H(p_{r-1}, p_r)))."""
    hashes = [lookup(level, index) for level, index in pieces(a, b)]
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def root(size: int, lookup: Lookup) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree(0, size, lookup)


def inclusion_ranges(m: int, n: int, offset: int = 0) -> list[tuple[int, int]]:
    """The subtrees D[a:b] whose hashes form PATH(m, D[n]) (RFC 9162 §2.1.3.1), leaf first."""
    if n <= 1:
        return []
    k = split(n)
    if m < k:
        return inclusion_ranges(m, k, offset) + [(offset + k, offset + n)]
    return inclusion_ranges(m - k, n - k, offset + k) + [(offset, offset + k)]


def consistency_ranges(m: int, n: int, offset: int = 0, whole: bool = True) -> list[tuple[int, int]]:
    """The subtrees whose hashes form PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (§2.1.4.1)."""
    if m == n:
        return [] if whole else [(offset, offset + n)]
    k = split(n)
    if m <= k:
        return consistency_ranges(m, k, offset, whole) + [(offset + k, offset + n)]
    return consistency_ranges(m - k, n - k, offset + k, False) + [(offset, offset + k)]


def inclusion_proof(m: int, n: int, lookup: Lookup) -> list[bytes]:
    return [subtree(a, b, lookup) for a, b in inclusion_ranges(m, n)]


def consistency_proof(m: int, n: int, lookup: Lookup) -> list[bytes]:
    if m == 0 or m == n:
        return []
    return [subtree(a, b, lookup) for a, b in consistency_ranges(m, n)]


def needed(ranges: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The stored perfect subtrees (level, index) a list of ranges folds from."""
    return {piece for a, b in ranges for piece in pieces(a, b)}


def tree_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect subtree hash of a list of leaf hashes (level 0 = the leaf hashes)."""
    nodes = {(0, i): h for i, h in enumerate(leaves)}
    level, count = 0, len(leaves)
    while count > 1:
        for i in range(count // 2):
            nodes[(level + 1, i)] = node_hash(nodes[(level, 2 * i)], nodes[(level, 2 * i + 1)])
        level, count = level + 1, count // 2
    return nodes


class Frontier:
    """The right edge of a growing tree (one perfect subtree per set bit of its size): appending a
    leaf hash gives the perfect subtrees it completes, to be stored, in O(log n) memory."""

    def __init__(self, size: int, lookup: Lookup) -> None:
        self.size = size
        self.stack = {level: lookup(level, index) for level, index in pieces(0, size)}

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        made = [(0, self.size, leaf)]
        level, index, node = 0, self.size, leaf
        while index & 1:
            node = node_hash(self.stack.pop(level), node)
            level, index = level + 1, index >> 1
            made.append((level, index, node))
        self.stack[level] = node
        self.size += 1
        return made

    def root(self) -> bytes:
        return root(self.size, lambda level, index: self.stack[level])


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step (`leaf` is the leaf hash)."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step; a tree of size 0 is consistent with any later tree."""
    if first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0
