"""`trilha checkpoint`: every TRILHA_CHECKPOINT_INTERVAL_S (and once more at SIGTERM/SIGINT) a
round of `checkpointer`, signed with the deployment's current key. One such process per
deployment (`trilha up` starts it beside ingest), at nice 10: on shared cores ingest and queries go
first, and a round that falls behind catches up when they idle. `--once` runs one round and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

import orjson

from services.proofs import checkpointer, keys, ledger
from services.runtime import clients, logs, netcheck
from services.runtime.running import until_signalled
from services.runtime.settings import Settings

log = logs.get("checkpoint")
NICE = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="one round now, print the checkpoint, exit")


async def _round(ch: object, settings: Settings) -> dict | None:
    kid, key = keys.current(keys.keys_dir(settings))
    made = await checkpointer.run_round(ch, settings, kid, key)  # type: ignore[arg-type]
    if made is not None:
        log.info("checkpoint signed", seq=made["seq"], size=made["size"], root=made["root"])
    return made


async def serve(settings: Settings, once: bool) -> int:
    await netcheck.require_clickhouse(settings)
    ch = await clients.clickhouse(settings)
    try:
        if once:
            made = await _round(ch, settings)
            print(orjson.dumps(ledger.public(made)).decode() if made else "no new records since the last checkpoint",
                  flush=True)
            return 0
        async with until_signalled(settings, None, log) as stop:
            first = True
            while True:
                try:
                    await _round(ch, settings)
                except Exception as exc:  # noqa: BLE001 - ClickHouse away: the next round starts from the last one
                    log.warning("checkpoint round failed", error=f"{type(exc).__name__}: {exc}"[:500])
                if first:
                    log.info("checkpointing", interval_s=settings.checkpoint_interval_s)
                    first = False
                if stop.is_set():
                    return 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.checkpoint_interval_s)
    finally:
        await ch.close()


def command(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(settings.log_level, settings.log_format, component="checkpoint")
    if not args.once:
        os.nice(NICE)  # a proof may wait a little; ingest and queries sharing the cores must not
    return asyncio.run(serve(settings, args.once))
