"""`trilha audit [--company C] [--keys FILE]`: walk what is stored against the signed checkpoints
(`audit`), print every problem naming its record or checkpoint; exit 1 when any is found."""

from __future__ import annotations

import argparse
import asyncio

from services.proofs import audit, keys, verify_command
from services.runtime import clients, netcheck
from services.runtime.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", help="walk only this company's records (the tree is always checked whole)")
    parser.add_argument("--keys", help="public keys as /.well-known/trilha-checkpoint-keys serves them "
                                       "(default: the keys directory's .pub files)")


async def _run(settings: Settings, public_keys: dict[str, bytes], company: str | None) -> audit.Report:
    await netcheck.require_clickhouse(settings)
    ch = await clients.clickhouse(settings)
    try:
        return await audit.run(ch, public_keys, company)
    finally:
        await ch.close()


def command(args: argparse.Namespace, settings: Settings) -> int:
    if args.keys:
        public_keys = verify_command.public_keys_from(args.keys, [])
    else:
        public_keys = {k.key_id: bytes.fromhex(k.public_key) for k in keys.public_keys(keys.keys_dir(settings))}
    report = asyncio.run(_run(settings, public_keys, args.company))
    for line in report.problems + report.erased:
        print(line)
    print(f"audit: {report.checkpoints} checkpoint(s), {report.leaves} leaves, {report.records} record(s) walked, "
          f"{len(report.erased)} erased, {len(report.problems)} problem(s)")
    return 1 if report.problems else 0
