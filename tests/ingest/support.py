"""What the ingest tests and the benchmark share: many realistic records fast, producing them, and
reading back what a user would check (distinct rows, the reader's view, the dead-letter topic)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime import clients
from services.runtime.settings import Settings
from services.stack.records import RecordFactory


def record_values(count: int, company: str, seed: int = 1, result_bytes: tuple[int, int] = (200, 800),
                  templates: int = 2000, start: datetime | None = None) -> list[bytes]:
    """`count` distinct, valid records as JSON bytes (one company, timestamps 1 ms apart).

    RecordFactory is ~100 µs a record; the shapes of `templates` factory records are reused with a
    fresh query_id and timestamp each, so 200k records take a second, not half a minute.
    """
    factory = RecordFactory(seed=seed, companies=1, result_bytes=result_bytes)
    shapes = [factory.record(company=company) for _ in range(min(count, templates))]
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(hours=1)
    values = []
    for n in range(count):
        record = dict(shapes[n % len(shapes)])
        record["query_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        record["timestamp"] = (start + timedelta(milliseconds=n)).isoformat(timespec="milliseconds")
        values.append(orjson.dumps(record))
    return values


async def produce(settings: Settings, values: Sequence[bytes], compression: str = "lz4") -> None:
    """Publish `values` to settings.kafka_topic with a plain aiokafka producer, in compressed batches
    spread over the partitions (send_batch: the producer's fast path, ~6x `send` per message)."""
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    producer = clients.kafka_producer(settings, compression_type=compression, max_batch_size=512 * 1024)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.kafka_topic))
        pending, index, turn = [], 0, 0
        while index < len(values):
            batch = producer.create_batch()
            while index < len(values) and batch.append(key=None, value=values[index], timestamp=None) is not None:
                index += 1
            batch.close()
            pending.append(await producer.send_batch(batch, settings.kafka_topic,
                                                     partition=partitions[turn % len(partitions)]))
            turn += 1
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def counts(ch: AsyncClient, company: str) -> dict[str, int]:
    """What is stored and what a reader sees: raw rows, distinct ids, de-duplicated and FINAL views."""
    row = (await ch.query(
        "SELECT count(), uniqExact(query_id), "
        "(SELECT count() FROM (SELECT query_id FROM calls WHERE company_id = {c:String} "
        " ORDER BY timestamp DESC, query_id DESC LIMIT 1 BY query_id)), "
        "(SELECT count() FROM calls FINAL WHERE company_id = {c:String}) "
        "FROM calls WHERE company_id = {c:String}", parameters={"c": company})).result_rows[0]
    return {"rows": row[0], "distinct": row[1], "reader": row[2], "final": row[3]}


async def stored_ids(ch: AsyncClient, company: str) -> set[str]:
    rows = await ch.query("SELECT DISTINCT query_id FROM calls WHERE company_id = {c:String}",
                          parameters={"c": company})
    return {r[0] for r in rows.result_rows}


async def wait_distinct(ch: AsyncClient, company: str, expected: int, timeout: float = 120.0) -> int:
    """Wait until `expected` distinct records of `company` are stored; returns how many there are."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = (await counts(ch, company))["distinct"]
        if seen >= expected:
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"{company}: {seen} of {expected} records reached ClickHouse within {timeout:.0f}s")


async def read_topic(settings: Settings, topic: str, expected: int, timeout: float = 60.0,
                     settle_s: float = 2.0) -> list[ConsumerRecord]:
    """All messages of `topic` (no group): waits for `expected`, then `settle_s` more for any extra."""
    consumer = clients.kafka_consumer(settings, topic, group_id=None)
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                found.extend(messages)
            if len(found) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle_s
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        await consumer.stop()
    return found


def header(message: Any, name: str) -> str:
    return dict(message.headers)[name].decode()


async def committed(settings: Settings) -> dict[int, int]:
    """The group's committed offset of every partition of settings.kafka_topic (0 where none)."""
    consumer = clients.kafka_consumer(settings, group_id=settings.kafka_group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(settings.kafka_topic) or set()
        return {p: await consumer.committed(TopicPartition(settings.kafka_topic, p)) or 0 for p in partitions}
    finally:
        await consumer.stop()


async def drained(settings: Settings, produced: int, timeout: float = 60.0) -> dict[int, int]:
    """Waits until the group's committed offsets add up to every message produced so far (offsets are
    contiguous from 0, so that is the end of every partition); returns them per partition."""
    deadline = time.monotonic() + timeout
    while True:
        done = await committed(settings)
        if sum(done.values()) >= produced or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)
