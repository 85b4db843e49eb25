"""Offline checks of what the query service hands out, with nothing but the public keys: the
checks README's "Proofs" section spells out for verifiers in any language.
"""

from __future__ import annotations

from typing import Any

from services.proofs import merkle, signing
from services.proofs.leaf import leaf_hash


def _hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def checkpoint_problem(checkpoint: Any, public_keys: dict[str, bytes]) -> str | None:
    if not isinstance(checkpoint, dict):
        return "no checkpoint in the answer"
    if not signing.signature_ok(checkpoint, public_keys):
        return f"checkpoint {checkpoint.get('seq')}: signature does not verify with key {checkpoint.get('key_id')}"
    return None


def record_problem(record: dict[str, Any], proof: dict[str, Any], checkpoint: dict[str, Any]) -> str | None:
    """None when `record` is leaf `proof.leaf_index` of the tree `checkpoint` signs."""
    if proof.get("status") != "included":
        return f"no proof: {proof.get('message', proof.get('status'))}"
    try:
        size, index = int(proof["tree_size"]), int(proof["leaf_index"])
        if size != int(checkpoint["size"]):
            return f"proof is for a tree of {size} leaves, the checkpoint's has {checkpoint['size']}"
        leaf = leaf_hash(record, proof["stored_at"])
        if merkle.verify_inclusion(index, size, leaf, _hashes(proof["path"]), bytes.fromhex(checkpoint["root"])):
            return None
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed proof ({type(exc).__name__}: {exc})"
    return "the record does not hash to a leaf of the signed tree (record or proof altered)"


def answer_problems(answer: dict[str, Any], public_keys: dict[str, bytes]) -> list[tuple[str, str | None]]:
    """(query_id, problem or None) for every record of an Events API answer sent with `"Proof": true`."""
    records, proofs = answer.get("Result") or [], answer.get("Proofs") or []
    if not records:
        return [("", "the answer has no records")]
    if len(proofs) != len(records):
        return [("", "the answer has no proof for each record (send \"Proof\": true)")]
    head = checkpoint_problem(answer.get("Checkpoint"), public_keys)
    out = []
    for record, proof in zip(records, proofs, strict=True):
        out.append((str(record.get("query_id")), head or record_problem(record, proof, answer["Checkpoint"])))
    return out


def consistency_problem(answer: dict[str, Any], public_keys: dict[str, bytes]) -> str | None:
    """None when `answer["to"]` extends `answer["from"]` (both signed, path checks out)."""
    first, second = answer.get("from"), answer.get("to")
    for checkpoint in (first, second):
        problem = checkpoint_problem(checkpoint, public_keys)
        if problem:
            return problem
    ok = merkle.verify_consistency(int(first["size"]), int(second["size"]), bytes.fromhex(first["root"]),
                                   bytes.fromhex(second["root"]), _hashes(answer.get("path") or []))
    return None if ok else f"checkpoint {second['seq']} does not extend checkpoint {first['seq']}"
