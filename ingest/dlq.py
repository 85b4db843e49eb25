"""Rejected messages → the dead-letter topic, with headers saying why, where from and when.

A bad message must never block its partition nor vanish: it is republished unchanged (same key,
same value) to the dead-letter topic before its offset may be committed. Delivery there is
at-least-once: after a crash a message can be dead-lettered twice; its source headers identify it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from ingest.batcher import Rejected
from ingest.metrics import IngestMetrics
from ingest.writer import backoff_delay

REASON = "trilha.dlq.reason"
ERROR = "trilha.dlq.error"
SOURCE_TOPIC = "trilha.dlq.source.topic"
SOURCE_PARTITION = "trilha.dlq.source.partition"
SOURCE_OFFSET = "trilha.dlq.source.offset"
SOURCE_TIMESTAMP = "trilha.dlq.source.timestamp"
DEAD_LETTERED_AT = "trilha.dlq.timestamp"
TRUNCATED = "trilha.dlq.truncated-from"
_TRUNCATE_TO = 64 * 1024


def headers(item: Rejected, now: datetime | None = None) -> list[tuple[str, bytes]]:
    """The dead-letter headers of one message (all values UTF-8 text)."""
    when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return [
        (REASON, item.rejection.reason.encode()),
        (ERROR, item.rejection.detail.encode()),
        (SOURCE_TOPIC, item.topic.encode()),
        (SOURCE_PARTITION, str(item.partition).encode()),
        (SOURCE_OFFSET, str(item.offset).encode()),
        (SOURCE_TIMESTAMP, str(item.timestamp_ms).encode()),
        (DEAD_LETTERED_AT, when.encode()),
    ]


class DeadLetters:
    """Publishes rejected messages and counts them by reason; `send` returns once all are acknowledged."""

    def __init__(self, producer: Any, topic: str, metrics: IngestMetrics, log: Any) -> None:
        self.producer, self.topic, self.metrics, self.log = producer, topic, metrics, log

    async def send(self, rejected: Sequence[Rejected]) -> None:
        if not rejected:
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._publish(rejected)
                break
            except KafkaError as exc:
                pause = backoff_delay(attempt)
                self.log.warning("dead-letter publish failed, retrying", error=str(exc), retry_in_s=round(pause, 2))
                await asyncio.sleep(pause)
        for item in rejected:
            self.metrics.dead_lettered.inc(reason=item.rejection.reason)
        self.log.info("records dead-lettered", count=len(rejected), topic=self.topic,
                      reasons=sorted({r.rejection.reason for r in rejected}))

    async def _publish(self, rejected: Sequence[Rejected]) -> None:
        now = datetime.now(UTC)
        pending = [await self._send_one(item, now) for item in rejected]
        await asyncio.gather(*pending)

    async def _send_one(self, item: Rejected, now: datetime) -> asyncio.Future[Any]:
        extra: list[tuple[str, bytes]] = []
        try:
            return await self.producer.send(self.topic, item.value, key=item.key, headers=headers(item, now))
        except MessageSizeTooLargeError:
            size = len(item.value or b"")
            extra = [(TRUNCATED, str(size).encode())]
            self.log.warning("dead-letter value too large for the topic, truncated", bytes=size,
                             partition=item.partition, offset=item.offset)
            return await self.producer.send(self.topic, (item.value or b"")[:_TRUNCATE_TO], key=item.key,
                                            headers=headers(item, now) + extra)
