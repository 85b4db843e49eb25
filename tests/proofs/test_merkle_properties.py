"""Properties of the proof code (Hypothesis): every inclusion and consistency proof the tree makes
verifies, and any single-bit change anywhere (leaf, path, root, index; the sizes through the
signature) makes it fail; the stored-subtree route gives the same proofs as the whole tree; a
checkpoint's signature fails when
any bit of it changes; the canonical JSON agrees with the independent verifier's."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.proofs import canonical, merkle, signing
from tests.proofs import independent

LEAVES = st.lists(st.binary(min_size=0, max_size=8), min_size=1, max_size=70, unique=True)  # records differ


def _tree(data: list[bytes]) -> tuple[list[bytes], merkle.Lookup]:
    leaves = [merkle.leaf_hash(d) for d in data]
    nodes = merkle.tree_nodes(leaves)
    return leaves, lambda level, index: nodes[(level, index)]


def _flip(blob: bytes, bit: int) -> bytes:
    data = bytearray(blob)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def _reference_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


@given(LEAVES, st.data())
@settings(max_examples=300, deadline=None)
def test_inclusion_proofs_verify_and_any_bit_flip_fails(data: list[bytes], draw: st.DataObject) -> None:
    leaves, lookup = _tree(data)
    n = len(leaves)
    m = draw.draw(st.integers(0, n - 1))
    root = merkle.root(n, lookup)
    assert root == _reference_root(leaves)
    path = merkle.inclusion_proof(m, n, lookup)
    assert merkle.verify_inclusion(m, n, leaves[m], path, root)
    assert independent.inclusion_ok(m, n, leaves[m], path, root)
    blob = leaves[m] + b"".join(path) + root
    bit = draw.draw(st.integers(0, len(blob) * 8 - 1))
    flipped = _flip(blob, bit)
    parts = [flipped[i:i + 32] for i in range(0, len(flipped), 32)]
    assert not merkle.verify_inclusion(m, n, parts[0], parts[1:-1], parts[-1])
    assert not independent.inclusion_ok(m, n, parts[0], parts[1:-1], parts[-1])
    # the index too (the tree size is bound by the checkpoint's signature, tested below: a path alone
    # cannot tell a tree of 8 from one of 7 when the leaf is left of the split)
    bit = draw.draw(st.integers(0, 20))
    assert not merkle.verify_inclusion(m ^ (1 << bit), n, leaves[m], path, root)


@given(LEAVES, st.data())
@settings(max_examples=300, deadline=None)
def test_consistency_proofs_verify_and_any_bit_flip_fails(data: list[bytes], draw: st.DataObject) -> None:
    leaves, lookup = _tree(data)
    n = len(leaves)
    m = draw.draw(st.integers(1, n))
    first, second = merkle.root(m, lookup), merkle.root(n, lookup)
    assert first == _reference_root(leaves[:m])
    path = merkle.consistency_proof(m, n, lookup)
    assert merkle.verify_consistency(m, n, first, second, path)
    assert independent.consistency_ok(m, n, first, second, path)
    blob = first + second + b"".join(path)
    bit = draw.draw(st.integers(0, len(blob) * 8 - 1))
    flipped = _flip(blob, bit)
    parts = [flipped[i:i + 32] for i in range(0, len(flipped), 32)]
    assert not merkle.verify_consistency(m, n, parts[0], parts[1], parts[2:])
    assert not independent.consistency_ok(m, n, parts[0], parts[1], parts[2:])
    if m < n:
        bit = draw.draw(st.integers(0, 20))
        assert not merkle.verify_consistency(m ^ (1 << bit), n, first, second, path)


@given(LEAVES, st.integers(0, 70))
@settings(max_examples=200, deadline=None)
def test_appending_in_rounds_stores_exactly_the_tree(data: list[bytes], cut: int) -> None:
    """A tree grown round by round (the checkpointer's Frontier) stores the same perfect subtrees
    and root as the tree built at once, whatever the round boundary."""
    leaves, lookup = _tree(data)
    cut = min(cut, len(leaves))
    first = merkle.tree_nodes(leaves[:cut])
    frontier = merkle.Frontier(cut, lambda level, index: first[(level, index)])
    made = dict(first)
    for leaf in leaves[cut:]:
        made.update({(level, index): h for level, index, h in frontier.append(leaf)})
    assert made == merkle.tree_nodes(leaves)
    assert frontier.root() == merkle.root(len(leaves), lookup)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**60, 2**60)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=4), max_leaves=12)


@given(JSON)
@settings(max_examples=500, deadline=None)
def test_canonical_json_agrees_with_the_independent_verifier(value: object) -> None:
    assert canonical.dumps(value) == independent.jcs(value).encode()


@given(st.integers(1, 2**40), st.integers(0, 2**40), st.binary(min_size=32, max_size=32), st.data())
@settings(max_examples=100, deadline=None)
def test_a_checkpoint_changed_anywhere_fails_its_signature(seq: int, size: int, root: bytes,
                                                           draw: st.DataObject) -> None:
    key = Ed25519PrivateKey.generate()
    kid = signing.key_id(key.public_key())
    body = {"seq": seq, "size": size, "root": root.hex(), "issued_at": "2026-11-29T12:00:00.000Z",
            "horizon": "2026-11-29T11:59:58.000Z", "prev": hashlib.sha256(b"x").hexdigest(), "key_id": kid}
    signed = signing.sign(body, key)
    keys = {kid: key.public_key().public_bytes_raw()}
    assert signing.signature_ok(signed, keys)
    assert independent.checkpoint_ok(signed, {"keys": [{"key_id": kid, "public_key": keys[kid].hex()}]})
    name = draw.draw(st.sampled_from(["seq", "size", "root", "issued_at", "horizon", "prev", "signature"]))
    value = signed[name]
    if isinstance(value, int):
        changed = value ^ (1 << draw.draw(st.integers(0, 40)))
    elif name == "signature":  # its hex is read case-insensitively: change the signature itself
        raw = bytes.fromhex(value)
        changed = _flip(raw, draw.draw(st.integers(0, len(raw) * 8 - 1))).hex()
    else:
        raw = value.encode()
        changed = _flip(raw, draw.draw(st.integers(0, len(raw) * 8 - 1))).decode("latin-1")
    assert not signing.signature_ok({**signed, name: changed}, keys)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**53, 2**53), min_size=2,
                max_size=6), st.text(max_size=8))
@settings(max_examples=1000, deadline=None)
def test_numbers_take_the_fast_path_only_when_orjson_writes_them_as_rfc_8785_does(numbers: list[float],
                                                                                 text: str) -> None:
    """The canonical encoder trusts orjson's output unless a byte search hints at an integral float
    or an exponent: every number, next to text that may look like one, still comes out as the
    independent verifier writes it."""
    value = {"n": numbers, "s": [text, *map(str, numbers)], "x": numbers[0]}
    assert canonical.dumps(value) == independent.jcs(value).encode()
