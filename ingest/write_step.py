"""The write step of ingest: write a sealed batch → dead-letter what was rejected → commit, in order.

Apart from the poll loop (`pipeline`), which only fetches, fills, pauses and handles rebalances:
this step owns the sealed batches, the one write in flight, the offsets (OffsetTracker) and the
dead-letter limit. Offsets are committed only over the contiguous prefix of written batches, so
a batch that failed (or tripped the dead-letter limit) is never skipped: it is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from ingest.batcher import Batch
from ingest.dlq import DeadLetters
from ingest.dlq_limit import DeadLetterLimit, DeadLetterLimitExceeded
from ingest.metrics import IngestMetrics
from ingest.offsets import OffsetTracker
from ingest.writer import Writer


class WriteFailed(RuntimeError):
    """A batch failed in a way no retry can fix (a bug or bad configuration): the worker must stop."""


class WriteStep:
    """Sealed batches, written one at a time, oldest first; `commit` moves the group's offsets."""

    def __init__(self, consumer: Any, writer: Writer, dead_letters: DeadLetters, limit: DeadLetterLimit,
                 metrics: IngestMetrics, log: Any) -> None:
        self.consumer, self.writer, self.dead_letters, self.limit = consumer, writer, dead_letters, limit
        self.metrics, self.log = metrics, log
        self.tracker = OffsetTracker()
        self.sealed: deque[Batch] = deque()
        self.writing: asyncio.Task[list[Any]] | None = None
        self.failure: BaseException | None = None
        self._progress = asyncio.Event()

    def raise_failure(self) -> None:
        """Raise what stopped the writes, if anything did (the poll loop calls this every step)."""
        if isinstance(self.failure, DeadLetterLimitExceeded):
            raise self.failure
        if self.failure is not None:
            raise WriteFailed(str(self.failure)) from self.failure

    def enqueue(self, batch: Batch) -> None:
        """A sealed batch joins the queue; its offsets become committable once it is written."""
        self.tracker.register(batch.seq, batch.ranges)
        self.sealed.append(batch)
        self._kick()

    async def wait_progress(self, timeout: float) -> None:
        """Until a write finishes (or fails), at most `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), timeout)
        self._progress.clear()

    def _kick(self) -> None:
        if self.writing is None and self.sealed and self.failure is None:
            batch = self.sealed[0]
            self.writing = asyncio.create_task(self._write(batch), name=f"write-batch-{batch.seq}")
            self.writing.add_done_callback(lambda task: self._written(task, batch))

    async def _write(self, batch: Batch) -> list[Any]:
        batch.write_started = time.monotonic()
        refused = await self.writer.write(batch)
        rejected = batch.rejected + refused
        self.limit.count(len(batch.bodies) + len(batch.rejected), len(rejected))  # before anything is sent
        await self.dead_letters.send(rejected)
        return refused

    def _written(self, task: asyncio.Task[list[Any]], batch: Batch) -> None:
        if task is not self.writing:
            return  # aborted and already replaced
        self.writing = None
        if task.cancelled():
            return
        if task.exception() is not None:
            self.failure = task.exception()
            if not isinstance(self.failure, DeadLetterLimitExceeded):
                self.log.error("batch write failed for good", seq=batch.seq, error=repr(self.failure))
            self._progress.set()
            return
        refused = task.result()
        self.sealed.popleft()
        self.tracker.done(batch.seq)
        self._observe(batch, len(refused))
        self._progress.set()
        self._kick()

    def _observe(self, batch: Batch, refused: int) -> None:
        rows = len(batch.bodies) - refused
        m = self.metrics
        m.rows_written.inc(rows)
        m.bytes_written.inc(batch.nbytes)
        m.batch_rows.observe(rows)
        m.batch_bytes.observe(batch.nbytes)
        now = time.monotonic()
        m.batch_age.observe(now - batch.started)
        self.log.debug("batch written", seq=batch.seq, rows=rows, bytes=batch.nbytes,
                       dead_lettered=len(batch.rejected) + refused, fill_s=round(batch.sealed_at - batch.started, 3),
                       queued_s=round(batch.write_started - batch.sealed_at, 3),
                       write_s=round(now - batch.write_started, 3))

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit the written prefix of every (or the given) assigned partition."""
        assigned = set(self.consumer.assignment())
        if partitions is not None:
            assigned &= set(partitions)
        offsets = self.tracker.to_commit(assigned)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            self.log.warning("offset commit failed; will retry", error=str(exc))
            return
        self.tracker.committed(offsets)
        self.metrics.commits.inc()

    async def drain(self, timeout: float) -> bool:
        """Write what is sealed within `timeout` and commit it; True if all of it made it."""
        deadline = time.monotonic() + timeout
        while self.sealed and self.failure is None and time.monotonic() < deadline:
            await self.wait_progress(max(0.01, deadline - time.monotonic()))
        drained = not self.sealed
        await self.commit()
        return drained

    def abort(self) -> None:
        """Drop every unwritten batch: nothing of it was committed, so it will be read again."""
        if self.writing is not None:
            self.writing.cancel()
            self.writing = None
        self.sealed.clear()
        self.tracker.reset()
