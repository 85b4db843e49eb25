"""Checkpoints (signed tree heads): what is signed, how, and how a verifier checks it.

A checkpoint says "the tree of the first `size` leaves has root `root`", with its sequence number
`seq`, when it was issued, the `horizon` (every record stored before it, less the overlap the
checkpointer re-reads, is a leaf of this tree), the SHA-256 of the previous checkpoint's signed
bytes (`prev`; 64 zeros for the first) and the `key_id` of the Ed25519 key that signed it.
Signed bytes = RFC 8785 canonical JSON of those fields plus `"v": "trilha-checkpoint/1"`; all
binary values are lowercase hex.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.proofs import canonical

VERSION = "trilha-checkpoint/1"
ERASURE_VERSION = "trilha-erasure/1"
GENESIS = "0" * 64
SIGNED_FIELDS = ("seq", "size", "root", "issued_at", "horizon", "prev", "key_id")


def signed_bytes(checkpoint: dict[str, Any], version: str = VERSION,
                 fields: tuple[str, ...] = SIGNED_FIELDS) -> bytes:
    return canonical.dumps({**{name: checkpoint[name] for name in fields}, "v": version})


def checkpoint_hash(checkpoint: dict[str, Any]) -> str:
    """What the next checkpoint's `prev` must be."""
    return hashlib.sha256(signed_bytes(checkpoint)).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


def sign(body: dict[str, Any], key: Ed25519PrivateKey, version: str = VERSION,
         fields: tuple[str, ...] = SIGNED_FIELDS) -> dict[str, Any]:
    return {**body, "signature": key.sign(signed_bytes(body, version, fields)).hex()}


def signature_ok(body: dict[str, Any], public_keys: dict[str, bytes], version: str = VERSION,
                 fields: tuple[str, ...] = SIGNED_FIELDS) -> bool:
    """True when `body` is signed by the key its key_id names, among `public_keys` (id → raw key)."""
    raw = public_keys.get(str(body.get("key_id")))
    try:
        if raw is None or any(name not in body for name in fields):
            return False
        Ed25519PublicKey.from_public_bytes(raw).verify(bytes.fromhex(body["signature"]),
                                                       signed_bytes(body, version, fields))
        return True
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
