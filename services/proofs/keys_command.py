"""`trilha keys`: the checkpoint signing keys' public halves (what verifiers need), and
`trilha keys rotate` / `trilha keys retire KEY_ID`."""

from __future__ import annotations

import argparse

import orjson

from services.proofs import keys
from services.runtime.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "rotate", "retire"), default="list")
    parser.add_argument("key_id", nargs="?", help="with retire: the old key whose private half to delete")
    parser.add_argument("--json", action="store_true", help="print what /.well-known/trilha-checkpoint-keys serves")


def command(args: argparse.Namespace, settings: Settings) -> int:
    directory = keys.keys_dir(settings)
    if args.action == "rotate":
        print(f"new current key: {keys.create(directory)}")
    elif args.action == "retire":
        keys.retire(directory, args.key_id or "")
        print(f"retired {args.key_id}: its public key stays, so its checkpoints still verify")
    found = keys.public_keys(directory)
    if args.json:
        print(orjson.dumps({"keys": [k.as_json() for k in found]}).decode())
    elif args.action == "list":
        for key in found:
            print(f"{key.key_id}  Ed25519  {key.public_key}{'  current' if key.current else ''}")
        if not found:
            print(f"no keys yet in {directory}: `trilha checkpoint` makes one, or `trilha keys rotate`")
    return 0
