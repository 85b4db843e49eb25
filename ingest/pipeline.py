"""The flow of batches: fetch → fill → write (one at a time) → commit, with bounded memory.

At most `max_sealed` batches exist besides the filling one (by default one being written and
one waiting). When that many are sealed, every assigned partition is paused and the loop keeps
polling (so the worker stays in its group) without fetching, until a write finishes: a slow or
absent ClickHouse stops the fetching instead of growing a buffer (Arroyo's backpressure).
Offsets are committed only over the contiguous prefix of written batches (OffsetTracker).

On revocation the pipeline writes and commits what it holds, within a time limit; what it could
not write is dropped, to be read again from the committed offsets by whoever owns the partition.
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

from ingest.batcher import Batch, Batcher
from ingest.dlq import DeadLetters
from ingest.metrics import IngestMetrics
from ingest.offsets import OffsetTracker
from ingest.writer import Writer


class WriteFailed(RuntimeError):
    """A batch failed in a way no retry can fix (a bug or bad configuration): the worker must stop."""


class Pipeline:
    def __init__(self, consumer: Any, batcher: Batcher, writer: Writer, dead_letters: DeadLetters,
                 metrics: IngestMetrics, log: Any, *, max_poll_records: int, max_sealed: int = 2,
                 poll_timeout_s: float = 0.2, revoke_timeout_s: float = 20.0) -> None:
        self.consumer, self.batcher, self.writer, self.dead_letters = consumer, batcher, writer, dead_letters
        self.metrics, self.log = metrics, log
        self.max_poll_records, self.max_sealed = max_poll_records, max_sealed
        self.poll_timeout_s, self.revoke_timeout_s = poll_timeout_s, revoke_timeout_s
        self.tracker = OffsetTracker()
        self.sealed: deque[Batch] = deque()
        self.writing: asyncio.Task[list[Any]] | None = None
        self.failure: BaseException | None = None
        self.generation = 0
        self.paused = False
        self._progress = asyncio.Event()
        self._lock = asyncio.Lock()

    # --- the poll loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, batch and commit until `stop` is set (then `close` finishes the work)."""
        while not stop.is_set():
            await self.step()

    async def step(self) -> None:
        if self.failure is not None:
            raise WriteFailed(str(self.failure)) from self.failure
        self._apply_backpressure()
        if self.paused:
            await self._wait_progress(0.5)
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
        await self.commit()

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
        if not self.sealed and self.batcher.due():
            self._enqueue(self.batcher.seal())

    def _apply_backpressure(self) -> None:
        assigned = self.consumer.assignment()
        if len(self.sealed) >= self.max_sealed:
            if not self.paused:
                self.log.debug("backpressure: pausing fetch", sealed=len(self.sealed))
            self.consumer.pause(*assigned)  # again each time: a partition may have been assigned meanwhile
            self.paused = True
        elif self.paused:
            self.consumer.resume(*self.consumer.paused())
            self.paused = False
        self.metrics.paused.set(1 if self.paused else 0)

    async def _wait_progress(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), timeout)
        self._progress.clear()

    # --- the write side ------------------------------------------------------------------------

    def _enqueue(self, batch: Batch) -> None:
        self.tracker.register(batch.seq, batch.ranges)
        self.sealed.append(batch)
        self._kick()

    def _kick(self) -> None:
        if self.writing is None and self.sealed:
            batch = self.sealed[0]
            self.writing = asyncio.create_task(self._write(batch), name=f"write-batch-{batch.seq}")
            self.writing.add_done_callback(lambda task: self._written(task, batch))

    async def _write(self, batch: Batch) -> list[Any]:
        batch.write_started = time.monotonic()
        refused = await self.writer.write(batch)
        await self.dead_letters.send(batch.rejected + refused)
        return refused

    def _written(self, task: asyncio.Task[list[Any]], batch: Batch) -> None:
        if task is not self.writing:
            return  # aborted and already replaced
        self.writing = None
        if task.cancelled():
            return
        if task.exception() is not None:
            self.failure = task.exception()
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

    # --- rebalance and shutdown ----------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Write and commit what is held (within the time limit), then forget the revoked partitions."""
        revoked = list(revoked)
        async with self._lock:
            self.generation += 1
            drained = await self._finish(self.revoke_timeout_s)
            self.tracker.forget(revoked)
            self.paused = False
        self.log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked), flushed=drained)

    async def close(self, timeout: float) -> bool:
        """Stop: write what is held, commit it, and say whether everything made it in time."""
        async with self._lock:
            return await self._finish(timeout)

    async def _finish(self, timeout: float) -> bool:
        if self.batcher.filling is not None:
            self._enqueue(self.batcher.seal())
        deadline = time.monotonic() + timeout
        while self.sealed and self.failure is None and time.monotonic() < deadline:
            await self._wait_progress(max(0.01, deadline - time.monotonic()))
        drained = not self.sealed
        await self.commit()
        if not drained:
            self.abort()
        return drained

    def abort(self) -> None:
        """Drop every unwritten batch: nothing of it was committed, so it will be read again."""
        if self.writing is not None:
            self.writing.cancel()
            self.writing = None
        self.sealed.clear()
        self.batcher.drop()
        self.tracker.reset()
        self.log.warning("unwritten batches dropped; they will be read again from the committed offsets")
