"""The poll loop of ingest: fetch → fill batches → hand them to the write step, with bounded memory.

At most `max_sealed` batches exist besides the filling one (by default one being written and
one waiting). When that many are sealed, every assigned partition is paused and the loop keeps
polling (so the worker stays in its group) without fetching, until a write finishes: a slow or
absent ClickHouse stops the fetching instead of growing a buffer (Arroyo's backpressure).
Writing, dead-lettering and committing are the write step's (`write_step.WriteStep`).

On revocation the pipeline writes and commits what it holds, within a time limit; what it could
not write is dropped, to be read again from the committed offsets by whoever owns the partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from ingest.batcher import Batch, Batcher
from ingest.metrics import IngestMetrics
from ingest.write_step import WriteStep


class Pipeline:
    """Polls the consumer and keeps the write step fed, pausing the fetch while it is full."""

    def __init__(self, consumer: Any, batcher: Batcher, step: WriteStep, metrics: IngestMetrics, log: Any, *,
                 max_poll_records: int, max_sealed: int = 2, poll_timeout_s: float = 0.2,
                 revoke_timeout_s: float = 20.0) -> None:
        self.consumer, self.batcher, self.writes = consumer, batcher, step
        self.metrics, self.log = metrics, log
        self.max_poll_records, self.max_sealed = max_poll_records, max_sealed
        self.poll_timeout_s, self.revoke_timeout_s = poll_timeout_s, revoke_timeout_s
        self.generation = 0
        self.paused = False
        self._lock = asyncio.Lock()

    # --- the poll loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, batch and commit until `stop` is set (then `close` finishes the work)."""
        while not stop.is_set():
            await self.step()

    async def step(self) -> None:
        """One poll: raises what stopped the write step (WriteFailed, DeadLetterLimitExceeded)."""
        self.writes.raise_failure()
        self._apply_backpressure()
        if self.paused:
            await self.writes.wait_progress(0.5)
            timeout_ms = 0
        else:
            timeout_ms = int(self._poll_timeout() * 1000)
        generation = self.generation
        try:
            data = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_poll_records)
        except KafkaError as exc:  # the broker is away: keep the group membership loop alive, try again
            self.log.warning("fetch failed, retrying", error=str(exc))
            await asyncio.sleep(1.0)
            return
        async with self._lock:
            if generation != self.generation:
                self._read_again(data)
            else:
                self._take(data)
            self._seal_if_due()
        await self.writes.commit()

    def _poll_timeout(self) -> float:
        left = self.batcher.time_left()
        if left is None:
            return self.poll_timeout_s
        if left == 0.0:  # due, but the writer is busy: keep filling, look again soon
            return 0.05
        return min(self.poll_timeout_s, left)

    def _take(self, data: dict[TopicPartition, list[Any]]) -> None:
        for tp, messages in data.items():
            read_before = self.batcher.bytes_read
            for batch in self.batcher.add(tp, messages):
                self._enqueue(batch)
            self.metrics.rows_in.inc(len(messages))
            self.metrics.bytes_in.inc(self.batcher.bytes_read - read_before)
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                self.metrics.lag.set(max(0, highwater - messages[-1].offset - 1), partition=tp.partition)

    def _read_again(self, data: dict[TopicPartition, list[Any]]) -> None:
        """Messages fetched across a rebalance are not used; their partitions rewind to read them again."""
        for tp, messages in data.items():
            with contextlib.suppress(IllegalStateError, AssertionError, KeyError):
                self.consumer.seek(tp, messages[0].offset)

    def _seal_if_due(self) -> None:
        """Age seals a batch only when the writer could take it now; under load batches grow to full."""
        if not self.writes.sealed and self.batcher.due():
            self._enqueue(self.batcher.seal())

    def _apply_backpressure(self) -> None:
        assigned = self.consumer.assignment()
        if len(self.writes.sealed) >= self.max_sealed:
            if not self.paused:
                self.log.debug("backpressure: pausing fetch", sealed=len(self.writes.sealed))
            self.consumer.pause(*assigned)  # again each time: a partition may have been assigned meanwhile
            self.paused = True
        elif self.paused:
            self.consumer.resume(*self.consumer.paused())
            self.paused = False
        self.metrics.paused.set(1 if self.paused else 0)

    def _enqueue(self, batch: Batch) -> None:
        self.writes.enqueue(batch)

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the written prefix of every (or the given) assigned partition."""
        await self.writes.commit(partitions)

    # --- rebalance and shutdown ----------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Write and commit what is held (within the time limit), then forget the revoked partitions."""
        revoked = list(revoked)
        async with self._lock:
            self.generation += 1
            drained = await self._finish(self.revoke_timeout_s)
            self.writes.tracker.forget(revoked)
            self.paused = False
        self.log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked), flushed=drained)

    async def close(self, timeout: float) -> bool:
        """Stop: write what is held, commit it, and say whether everything made it in time."""
        async with self._lock:
            return await self._finish(timeout)

    async def _finish(self, timeout: float) -> bool:
        if self.batcher.filling is not None:
            self._enqueue(self.batcher.seal())
        drained = await self.writes.drain(timeout)
        if not drained:
            self.abort()
        return drained

    def abort(self) -> None:
        """Drop every unwritten batch: nothing of it was committed, so it will be read again."""
        self.writes.abort()
        self.batcher.drop()
        self.log.warning("unwritten batches dropped; they will be read again from the committed offsets")
