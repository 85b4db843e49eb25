"""`trilha erase --company C --query-id Q --reason TEXT`: LGPD erasure (see `erasure`)."""

from __future__ import annotations

import argparse
import asyncio

from services.proofs import erasure, keys
from services.runtime.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", required=True)
    parser.add_argument("--query-id", required=True)
    parser.add_argument("--reason", required=True, help="why (e.g. the request's reference); kept, signed")


def command(args: argparse.Namespace, settings: Settings) -> int:
    kid, key = keys.current(keys.keys_dir(settings), create_if_missing=False)
    made = asyncio.run(erasure.erase(settings, args.company, args.query_id, args.reason, kid, key))
    for entry in made:
        print(f"erased {args.company} {args.query_id} {entry['timestamp']} (leaf {entry['leaf_index']})")
    return 0
