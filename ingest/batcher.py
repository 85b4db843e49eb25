"""Fetched messages → batches that are full by rows, by bytes or by age, each written by one insert.

ClickHouse wants few, large inserts (10k-100k rows, about one a second), so messages are gathered
until one limit is reached. A batch remembers, per partition, the offsets it was read from (the
rejected messages included: they are "done" once dead-lettered) so offsets can be committed only
after the batch is written; and, per row, the message it came from, so a row ClickHouse refuses
can be dead-lettered with its origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from ingest.decode import Rejection


@dataclass(slots=True)
class RejectedMessage:
    """A Kafka message bound for the dead-letter topic: the message as read, where it came from, and
    its `Rejection` (the reason code and detail that say why it cannot be stored)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    rejection: Rejection

    @classmethod
    def of(cls, msg: Any, rejection: Rejection) -> RejectedMessage:
        return cls(msg.topic, msg.partition, msg.offset, msg.timestamp, msg.key, msg.value, rejection)


@dataclass(slots=True, eq=False)
class Batch:
    """Rows (ClickHouse-ready lines) plus everything needed to commit, retry and dead-letter them."""

    seq: int
    started: float
    bodies: list[bytes] = field(default_factory=list)
    origins: list[Any] = field(default_factory=list)  # the ConsumerRecord of each row in `bodies`
    rejected: list[RejectedMessage] = field(default_factory=list)
    ranges: dict[TopicPartition, list[int]] = field(default_factory=dict)  # tp -> [first, last] read
    nbytes: int = 0
    sealed_at: float = 0.0  # monotonic times, for the batch-age metric and the per-batch debug line
    write_started: float = 0.0

    @property
    def messages(self) -> int:
        """Messages read into this batch (rows plus rejected)."""
        return len(self.bodies) + len(self.rejected)

    def extend(self, tp: TopicPartition, first: int, last: int) -> None:
        span = self.ranges.get(tp)
        if span is None:
            self.ranges[tp] = [first, last]
        else:
            span[1] = last


class Batcher:
    """Decodes messages into the filling batch and seals it when a limit is reached."""

    def __init__(self, decode: Callable[[bytes | None], bytes | Rejection], max_rows: int, max_bytes: int,
                 max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.decode = decode
        self.max_rows, self.max_bytes, self.max_age_s = max_rows, max_bytes, max_age_s
        self.clock = clock
        self.filling: Batch | None = None
        self.bytes_read = 0  # running total of message bytes decoded (for the bytes-in metric)
        self._seq = 0

    def add(self, tp: TopicPartition, messages: Sequence[Any]) -> list[Batch]:
        """Decode `messages` (one partition, in offset order); returns the batches this filled up."""
        sealed: list[Batch] = []
        start, count = 0, len(messages)
        while start < count:
            batch = self.filling or self._start()
            end = self._fill(batch, messages, start)
            batch.extend(tp, messages[start].offset, messages[end - 1].offset)
            if len(batch.bodies) >= self.max_rows or batch.nbytes >= self.max_bytes:
                sealed.append(self.seal())
            start = end
        return sealed

    def _fill(self, batch: Batch, messages: Sequence[Any], start: int) -> int:
        """The hot loop: per message one decode and two appends; returns where it stopped."""
        decode, bodies, origins = self.decode, batch.bodies, batch.origins
        max_rows, max_bytes, nbytes = self.max_rows, self.max_bytes, batch.nbytes
        index = start
        for index in range(start, len(messages)):
            msg = messages[index]
            out = decode(msg.value)
            if type(out) is bytes:
                bodies.append(out)
                origins.append(msg)
                nbytes += len(out) + 1
                if len(bodies) >= max_rows or nbytes >= max_bytes:
                    self.bytes_read += nbytes - batch.nbytes
                    batch.nbytes = nbytes
                    return index + 1
            else:
                batch.rejected.append(RejectedMessage.of(msg, out))
                self.bytes_read += len(msg.value or b"")
        self.bytes_read += nbytes - batch.nbytes
        batch.nbytes = nbytes
        return index + 1

    def _start(self) -> Batch:
        self._seq += 1
        self.filling = Batch(self._seq, self.clock())
        return self.filling

    def seal(self) -> Batch:
        """Close the filling batch (the caller checked there is one) and return it."""
        batch = self.filling
        assert batch is not None
        self.filling = None
        batch.sealed_at = self.clock()
        return batch

    def due(self) -> bool:
        """The filling batch has reached its maximum age."""
        return self.filling is not None and self.clock() - self.filling.started >= self.max_age_s

    def time_left(self) -> float | None:
        """Seconds until the filling batch is due (None: nothing is filling)."""
        if self.filling is None:
            return None
        return max(0.0, self.max_age_s - (self.clock() - self.filling.started))

    def drop(self) -> None:
        """Forget the filling batch (its messages will be read again from the committed offsets)."""
        self.filling = None
