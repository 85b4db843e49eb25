"""`trilha migrate`: bring ClickHouse's tables and Kafka's topics to what this version expects."""

from __future__ import annotations

import argparse
import asyncio

from schemas import cluster, migrations
from services.runtime import clients
from services.runtime.deps import require_clickhouse, require_kafka
from services.runtime.settings import Settings


async def prepare(settings: Settings) -> list[str]:
    """Migrations and topics; every process that needs them may call this (it is idempotent)."""
    await require_clickhouse(settings)
    await require_kafka(settings)
    layout, applied = cluster.layout(settings), []
    for target in cluster.ddl_targets(settings):  # each embedded shard, or the one URL
        client = await clients.clickhouse(target)
        try:
            applied = await migrations.apply(client, layout)
        finally:
            await client.close()
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    return applied


def command(args: argparse.Namespace, settings: Settings) -> int:
    applied = asyncio.run(prepare(settings))
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    return 0
