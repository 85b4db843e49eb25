"""Factories for the network clients every process uses: one code path, whatever is behind it.

Ingest and query talk to ClickHouse through clickhouse-connect over HTTP and to Kafka through
aiokafka, whether the other end is the embedded stack or a production cluster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime.settings import Settings
from services.stack.clickhouse_auth import login

# Make a sharded cluster answer exactly as one node does (and change nothing on one node):
# - inserts through a Distributed table are written to every shard before they are acknowledged,
#   so a retried batch is de-duplicated per shard with its token and a write is read back at once;
# - an IN/JOIN over a Distributed table inside a query over one runs once, globally (GLOBAL IN),
#   so a search page picks its candidates exactly as one node would;
# - a lookup by the sharding key (QueryId, token id) goes to the one shard that holds it;
# - a shard that does not answer fails the query: never a silently partial answer.
CLUSTER_SETTINGS = {
    "distributed_foreground_insert": 1,
    "distributed_product_mode": "global",
    "optimize_skip_unused_shards": 1,
    "skip_unavailable_shards": 0,
}


async def clickhouse(settings: Settings, **kwargs: Any) -> AsyncClient:
    """An async client without a session: it is shared by concurrent tasks (clickhouse-connect#295)."""
    url = urlsplit(settings.clickhouse_url)
    user, password = login(settings)
    options: dict[str, Any] = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or (8443 if url.scheme == "https" else 8123),
        "secure": url.scheme == "https",
        "username": user,
        "password": password,
        "database": settings.clickhouse_database,
        "autogenerate_session_id": False,
        "connect_timeout": 5,
        "send_receive_timeout": 300,
        "settings": dict(CLUSTER_SETTINGS),
    }
    options.update(kwargs)
    return await clickhouse_connect.get_async_client(**options)


def kafka_producer(settings: Settings, **kwargs: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence,
        "compression_type": "lz4",
        "linger_ms": 5,
    }
    options.update(kwargs)
    return AIOKafkaProducer(**options)


def kafka_consumer(settings: Settings, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": settings.kafka_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    options.update(kwargs)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: Settings, *names: str, partitions: int | None = None) -> None:
    """Create the topics Trilha uses when they are missing; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            count = partitions or settings.kafka_partitions
            try:
                await admin.create_topics([NewTopic(n, num_partitions=count, replication_factor=1) for n in missing])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
