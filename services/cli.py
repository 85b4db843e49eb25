"""The `trilha` command: one table of sub-commands, each implemented by the module named in it.

A command module offers `add_arguments(parser)` (optional) and `command(args, settings) -> int`.
Bad configuration ends with one line on stderr saying what is wrong, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from services.runtime.settings import ConfigError, Settings

COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("services.stack.supervisor", "start the whole stack on this machine (broker, ClickHouse, ingest, query)"),
    "broker": ("services.stack.broker_command", "run the embedded Kafka-protocol broker (Tansu)"),
    "clickhouse": ("services.stack.clickhouse_command", "run ClickHouse's own server from the chdb-core wheel"),
    "migrate": ("schemas.migrate_command", "apply ClickHouse migrations and create the Kafka topics"),
    "ingest": ("ingest.worker", "consume call records from Kafka and write them into ClickHouse"),
    "query": ("query.app", "serve the Events API, reports and console over HTTP"),
    "scheduler": ("query.reports.scheduler", "run scheduled reports when they are due"),
    "tokens": ("query.access.tokens", "create, list and revoke API tokens"),
    "gateway": ("services.gateway.proxy", "recording reverse proxy in front of an upstream API"),
    "loadgen": ("services.stack.loadgen", "publish realistic call records at a steady rate"),
    "checkpoint": ("services.proofs.checkpoint_command", "sign a checkpoint of the proof tree every interval"),
    "keys": ("services.proofs.keys_command", "print (rotate, retire) the checkpoint signing keys"),
    "verify": ("services.proofs.verify_command", "check a saved answer's proofs offline, with the public keys"),
    "audit": ("services.proofs.audit_command", "check every stored record and checkpoint against the tree"),
    "erase": ("services.proofs.erase_command", "erase a record (LGPD), leaving a signed erasure entry"),
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """All sub-commands are listed; only `chosen`'s module is imported to add its arguments."""
    top = argparse.ArgumentParser(prog="trilha", description="Trilha: every API call recorded, found again fast.")
    subs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        add = getattr(_module(name), "add_arguments", None) if name == chosen else None
        if add is not None:
            add(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        chosen = next((a for a in argv if not a.startswith("-")), None)
        args = parser(chosen if chosen in COMMANDS else None).parse_args(argv)
        return int(_module(args.command).command(args, Settings.from_env()) or 0)
    except ConfigError as exc:
        print(f"trilha: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
