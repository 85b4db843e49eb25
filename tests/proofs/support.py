"""Shared by the proof tests: checkpoint rounds run in-process against the session stack, the
query service as a real process, and tampering done straight in ClickHouse on every shard."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from schemas import cluster
from services.proofs import checkpointer, keys
from services.proofs.erasure import mutate
from services.runtime import clients
from tests.stack import Stack


def round_settings(stack: Stack) -> Any:
    """No lag: a record inserted a moment ago is covered by the next round."""
    return replace(stack.settings, checkpoint_lag_s=0.0)


async def checkpoint(stack: Stack, ch: AsyncClient) -> dict[str, Any] | None:
    """One round of `trilha checkpoint`, signed with the stack's key (made on first use)."""
    await asyncio.sleep(0.01)  # the round covers ingested_at < now
    kid, key = keys.current(keys.keys_dir(stack.settings))
    return await checkpointer.run_round(ch, round_settings(stack), kid, key)


async def tamper(stack: Stack, statement: str, **parameters: Any) -> None:
    """An ALTER TABLE … UPDATE/DELETE behind the service's back, on every shard."""
    await mutate(stack.settings, statement, parameters)


async def merge_calls(stack: Stack, partition: int) -> None:
    """Merge one month of `calls` on every shard, as ClickHouse eventually does by itself: a
    ReplacingMergeTree keeps the last row inserted with a key (what an insert-replace counts on)."""
    table = "calls_local" if cluster.layout(stack.settings).cluster else "calls"
    for target in cluster.ddl_targets(stack.settings):
        ch = await clients.clickhouse(target)
        try:
            await ch.command(f"OPTIMIZE TABLE {table} PARTITION ID '{int(partition)}' FINAL")
        finally:
            await ch.close()
