"""A verifier written from README's "Proofs" section alone, as a third party would write it: it
imports nothing from Trilha (only hashlib, json, decimal and `cryptography`'s Ed25519)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _number(x: int | float) -> str:
    if isinstance(x, int) and abs(x) <= 2**53:
        return str(x)
    x = float(x)
    if x == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    text = "".join(map(str, digits))
    n = len(text) + exponent  # value = 0.text × 10^n
    k = len(text)
    if k <= n <= 21:
        out = text + "0" * (n - k)
    elif 0 < n <= 21:
        out = text[:n] + "." + text[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + text
    else:
        out = text[0] + ("." + text[1:] if k > 1 else "") + "e" + ("+" if n - 1 > 0 else "-") + str(abs(n - 1))
    return ("-" if sign else "") + out


def jcs(value: Any) -> str:
    """RFC 8785, as README describes it."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(value[k]) for k in keys) + "}"


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(record: dict[str, Any], stored_at: str) -> bytes:
    leaf = jcs({"company": record["company_id"], "record": record, "stored_at": stored_at}).encode()
    return _h(b"\x00" + leaf)


def inclusion_ok(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn // 2, sn // 2
    return sn == 0 and r == root


def consistency_ok(m: int, n: int, first: bytes, second: bytes, path: list[bytes]) -> bool:
    if m == n:
        return not path and first == second
    if m == 0:
        return not path
    if m > n or not path:
        return False
    if m & (m - 1) == 0:
        path = [first] + path
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn, sn = fn // 2, sn // 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = _h(b"\x01" + c + fr), _h(b"\x01" + c + sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn // 2, sn // 2
    return fr == first and sr == second and sn == 0


def checkpoint_ok(checkpoint: dict[str, Any], keys: dict[str, Any]) -> bool:
    """`keys`: GET /.well-known/trilha-checkpoint-keys's answer."""
    public = {k["key_id"]: bytes.fromhex(k["public_key"]) for k in keys["keys"]}
    fields = {name: checkpoint[name] for name in ("seq", "size", "root", "issued_at", "horizon", "prev", "key_id")}
    message = jcs({**fields, "v": "trilha-checkpoint/1"}).encode()
    try:
        Ed25519PublicKey.from_public_bytes(public[checkpoint["key_id"]]).verify(
            bytes.fromhex(checkpoint["signature"]), message)
        return True
    except (InvalidSignature, KeyError, ValueError):
        return False


def record_ok(record: dict[str, Any], proof: dict[str, Any], checkpoint: dict[str, Any], keys: dict[str, Any]) -> bool:
    """The whole check of one record of an answer sent with "Proof": true."""
    if proof.get("status") != "included" or not checkpoint_ok(checkpoint, keys):
        return False
    if proof["tree_size"] != checkpoint["size"]:
        return False
    return inclusion_ok(proof["leaf_index"], proof["tree_size"], leaf_hash(record, proof["stored_at"]),
                        [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(checkpoint["root"]))


def answer_ok(answer: dict[str, Any], keys: dict[str, Any]) -> list[bool]:
    return [record_ok(r, p, answer["Checkpoint"], keys) for r, p in zip(answer["Result"], answer["Proofs"],
                                                                        strict=True)]
