"""Rejected messages → the dead-letter topic, with headers saying why, where from and when.

A bad message must never block its partition nor vanish: it is republished unchanged (same key,
same value) to the dead-letter topic before its offset may be committed. Delivery there is
at-least-once: after a crash a message can be dead-lettered twice; its source headers identify it.

Only the broker being away is retried. What the producer or the broker refuses about ONE message
(too large for the producer or the topic, an invalid record, any other error that is not the
broker being unreachable) is that message's problem: it is sent
again with its value cut to 64 KiB (header `trilha.dlq.truncated-from` gives the original size),
and if even that is refused, with no value and no key: the headers still say what, why and where from.
Header values are UTF-8 with anything unencodable escaped, and bounded, so no reason text can
make the dead letter itself fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

from ingest.batcher import RejectedMessage
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
_HEADER_MAX = 4096
# The broker's or producer's verdict on one message, not on the broker: retrying it unchanged cannot help.
REFUSED_MESSAGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, InvalidMessageError,
                   CorruptRecordException, InvalidTimestampError, UnsupportedForMessageFormatError)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "backslashreplace")[:_HEADER_MAX]


def headers(item: RejectedMessage, now: datetime | None = None) -> list[tuple[str, bytes]]:
    """The dead-letter headers of one message (all values UTF-8 text)."""
    when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return [
        (REASON, _text(item.rejection.reason)),
        (ERROR, _text(item.rejection.detail)),
        (SOURCE_TOPIC, _text(item.topic)),
        (SOURCE_PARTITION, str(item.partition).encode()),
        (SOURCE_OFFSET, str(item.offset).encode()),
        (SOURCE_TIMESTAMP, str(item.timestamp_ms).encode()),
        (DEAD_LETTERED_AT, _text(when)),
    ]


class DeadLetters:
    """Publishes rejected messages and counts them by reason; `send` returns once all are acknowledged."""

    def __init__(self, producer: Any, topic: str, metrics: IngestMetrics, log: Any) -> None:
        self.producer, self.topic, self.metrics, self.log = producer, topic, metrics, log

    async def send(self, rejected: Sequence[RejectedMessage]) -> None:
        """Every message acknowledged by the dead-letter topic, whatever it holds; only waits out the broker."""
        if not rejected:
            return
        pending = [(item, 0) for item in rejected]  # each with its level: 0 as it was, 1 value cut, 2 no value
        attempt = 0
        while pending:
            attempt += 1
            pending, broker_error = await self._round(pending)
            if broker_error is not None:
                pause = backoff_delay(attempt)
                self.log.warning("dead-letter publish failed, retrying", error=repr(broker_error),
                                 retry_in_s=round(pause, 2), messages=len(pending))
                await asyncio.sleep(pause)
        for item in rejected:
            self.metrics.dead_lettered.inc(reason=item.rejection.reason)
        self.log.info("records dead-lettered", count=len(rejected), topic=self.topic,
                      reasons=sorted({r.rejection.reason for r in rejected}))

    async def _round(self, pending: list[tuple[RejectedMessage, int]]
                     ) -> tuple[list[tuple[RejectedMessage, int]], BaseException | None]:
        """One attempt for every pending message: what is left, and the error worth waiting out."""
        now = datetime.now(UTC)
        outcomes = await asyncio.gather(*(self._deliver(item, level, now) for item, level in pending),
                                        return_exceptions=True)
        left: list[tuple[RejectedMessage, int]] = []
        wait_for: BaseException | None = None
        for (item, level), outcome in zip(pending, outcomes, strict=True):
            if outcome is None:
                continue
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation
            broker_away = isinstance(outcome, KafkaError | OSError) and not isinstance(outcome, REFUSED_MESSAGE)
            if not broker_away and level < 2:  # about this message: send it smaller
                self.log.warning("dead letter refused as it is; sending it smaller", error=repr(outcome),
                                 bytes=len(item.value or b""), partition=item.partition, offset=item.offset)
                left.append((item, level + 1))
                continue
            if not broker_away:
                self.log.error("dead-letter publish failed", error=repr(outcome), partition=item.partition,
                               offset=item.offset)
            left.append((item, level))
            wait_for = outcome
        return left, wait_for

    async def _deliver(self, item: RejectedMessage, level: int, now: datetime) -> None:
        """One message, as it was (level 0), with its value cut (1) or without it (2); acknowledged."""
        value, key, extra = item.value, item.key, []
        if level > 0:
            extra = [(TRUNCATED, str(len(item.value or b"")).encode())]
            value = (item.value or b"")[:_TRUNCATE_TO] if level == 1 else None
            key = key if level == 1 else None
        future = await self.producer.send(self.topic, value, key=key, headers=headers(item, now) + extra)
        await future
