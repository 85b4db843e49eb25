"""How the emitter talks to Kafka: starting a producer, and sending a window of records packed
into one batch per partition, telling records the broker refuses for good from failures worth a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnsupportedVersionError,
)
from aiokafka.partitioner import DefaultPartitioner

from services.gateway.emitter.spill import Entry

# A broker refuses these records whatever we do: retrying would stall every record behind them.
REJECTED = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, CorruptRecordException,
            InvalidTimestampError)
# What a broker without idempotent producers (the embedded Tansu broker) answers to InitProducerId.
NO_IDEMPOTENCE = (UnknownError, UnsupportedVersionError)
_PARTITIONER = DefaultPartitioner()


async def started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """`producer`, started; stopped again if starting fails half-way."""
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


async def stop(producer: AIOKafkaProducer) -> None:
    """Stop `producer` within 5 s, or at least close its connections."""
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except (TimeoutError, Exception):  # noqa: BLE001 - unacknowledged records are in the spill file
        with contextlib.suppress(Exception):
            await producer.client.close()


async def refresh_metadata(producer: AIOKafkaProducer, bootstrap: str) -> None:
    """After an outage, ask the broker about the topic before sending again.

    A restarted broker may no longer have the topic; a producer using its cached metadata
    would then send blind. The embedded (Tansu) broker even acknowledges such records and
    drops them, and creates the topic only when metadata is asked for it.
    """
    if not await asyncio.wait_for(producer.client.force_metadata_update(), 15):
        raise KafkaConnectionError(f"no metadata from {bootstrap}")


async def send_window(producer: AIOKafkaProducer, topic: str, window: list[Entry]) -> int:
    """Send records and wait for every acknowledgement; returns how many the broker refused for good.

    Records are packed into one batch per partition here (what aiokafka's per-record `send`
    would do, at about a third of the CPU): the partition comes from the key, as Kafka's
    default partitioner would choose it, so a company's records share a partition.
    """
    partitions = sorted(await producer.partitions_for(topic))
    sent: list[tuple[asyncio.Future[Any], list[Entry]]] = []
    try:
        for partition, entries in _by_partition(window, partitions).items():
            for batch, members in _batches(producer, entries):
                sent.append((await producer.send_batch(batch, topic, partition=partition), members))
    except BaseException:
        for future, _ in sent:  # they may still settle; their outcome no longer matters
            future.add_done_callback(_ignore_outcome)
        raise
    timeout = producer._request_timeout_ms / 1000 * 2 + 5  # noqa: SLF001 - aiokafka's own expiry, doubled
    outcomes = asyncio.gather(*(f for f, _ in sent), return_exceptions=True)
    results = await asyncio.wait_for(outcomes, timeout)
    rejected = 0
    for result, (_, members) in zip(results, sent, strict=True):
        if isinstance(result, REJECTED):
            rejected += await _one_by_one(producer, topic, members)
        elif isinstance(result, BaseException):
            raise result
    return rejected


async def _one_by_one(producer: AIOKafkaProducer, topic: str, entries: list[Entry]) -> int:
    """A refused batch is re-sent record by record, so only the records at fault are lost."""
    futures = [await producer.send(topic, value, key=key) for key, value in entries]
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, REJECTED):
            raise result
    return sum(isinstance(r, REJECTED) for r in results)


def _by_partition(entries: list[Entry], partitions: list[int]) -> dict[int, list[Entry]]:
    """Group records by the partition Kafka's default partitioner (murmur2 of the key) picks."""
    groups: dict[int, list[Entry]] = {}
    cache: dict[bytes, int] = {}
    for entry in entries:
        key = entry[0]
        partition = cache.get(key)
        if partition is None:
            partition = cache[key] = _PARTITIONER(key, partitions, partitions)
        groups.setdefault(partition, []).append(entry)
    return groups


def _batches(producer: AIOKafkaProducer, entries: list[Entry]) -> list[tuple[Any, list[Entry]]]:
    """Fill batches up to the producer's batch size (a record larger than that gets one of its own)."""
    batches: list[tuple[Any, list[Entry]]] = []
    batch, members = producer.create_batch(), []
    for key, value in entries:
        if batch.append(key=key, value=value, timestamp=None) is None:
            batches.append((batch, members))
            batch, members = producer.create_batch(), []
            batch.append(key=key, value=value, timestamp=None)
        members.append((key, value))
    if members:
        batches.append((batch, members))
    return batches


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
