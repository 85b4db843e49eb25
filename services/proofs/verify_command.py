"""`trilha verify FILE`: check, offline, an Events API answer saved with `"Proof": true` (every
record against its checkpoint), or a `GET /proofs/consistency` answer, with the public keys only.
Exit 0 when everything verifies, 1 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.proofs import verify
from services.proofs.signing import key_id
from services.runtime.settings import ConfigError, Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("answer", help="file holding the JSON answer to check")
    parser.add_argument("--keys", help="file holding GET /.well-known/trilha-checkpoint-keys's answer")
    parser.add_argument("--key", action="append", default=[], metavar="HEX",
                        help="a raw Ed25519 public key in hex (repeatable), instead of --keys")


def public_keys_from(keys_file: str | None, hex_keys: list[str]) -> dict[str, bytes]:
    """Key id → raw public key, from a saved /.well-known/trilha-checkpoint-keys answer and/or hex keys."""
    found: dict[str, bytes] = {}
    try:
        if keys_file:
            for entry in orjson.loads(Path(keys_file).read_bytes())["keys"]:
                found[entry["key_id"]] = bytes.fromhex(entry["public_key"])
        for text in hex_keys:
            raw = bytes.fromhex(text)
            found[key_id(Ed25519PublicKey.from_public_bytes(raw))] = raw
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"could not read the public keys: {exc}") from None
    if not found:
        raise ConfigError("give the public keys: --keys FILE (from /.well-known/trilha-checkpoint-keys) or --key HEX")
    return found


def command(args: argparse.Namespace, settings: Settings) -> int:
    public_keys = public_keys_from(args.keys, args.key)
    try:
        answer = orjson.loads(Path(args.answer).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{args.answer} is not a readable JSON answer: {exc}") from None
    if isinstance(answer, dict) and "from" in answer and "to" in answer:
        problem = verify.consistency_problem(answer, public_keys)
        print(f"FAILED: {problem}" if problem else
              f"ok: checkpoint {answer['to']['seq']} extends checkpoint {answer['from']['seq']}")
        return 1 if problem else 0
    results = verify.answer_problems(answer if isinstance(answer, dict) else {}, public_keys)
    for query_id, problem in results:
        print(f"FAILED {query_id}: {problem}" if problem else f"ok {query_id}")
    return 1 if any(problem for _, problem in results) else 0
