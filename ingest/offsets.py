"""Per partition, the offset below which every message is written: the only offset ever committed.

Committing a later batch's offset while an earlier one failed would skip the failed messages for
good (vectordotdev/vector#24215). So each partition keeps its batches' offset ranges in the order
they were read; a range becomes done when its batch is written (and its rejects dead-lettered),
and the committable offset only moves over a contiguous prefix of done ranges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass(slots=True)
class _Span:
    first: int
    last: int
    batch: int
    done: bool = False


class OffsetTracker:
    """`register` ranges as batches are sealed, `done` them when written, `to_commit` what is safe."""

    def __init__(self) -> None:
        self._spans: dict[TopicPartition, deque[_Span]] = {}
        self._by_batch: dict[int, list[_Span]] = {}
        self._safe: dict[TopicPartition, int] = {}  # tp -> next offset to read after the written prefix
        self._committed: dict[TopicPartition, int] = {}

    def register(self, batch: int, ranges: Mapping[TopicPartition, Sequence[int]]) -> None:
        """Record that `batch` holds offsets first..last of each partition (in read order)."""
        spans = []
        for tp, (first, last) in ranges.items():
            queue = self._spans.setdefault(tp, deque())
            previous = queue[-1].last if queue else self._safe.get(tp, -1) - 1
            if first <= previous:
                raise ValueError(f"{tp}: range {first}-{last} registered after offset {previous}")
            span = _Span(first, last, batch)
            queue.append(span)
            spans.append(span)
        self._by_batch[batch] = spans

    def done(self, batch: int) -> None:
        """`batch` is written: advance every partition over its contiguous done prefix."""
        for span in self._by_batch.pop(batch, ()):
            span.done = True
        for tp, queue in self._spans.items():
            while queue and queue[0].done:
                self._safe[tp] = queue.popleft().last + 1

    def to_commit(self, assigned: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets that moved since the last commit, restricted to `assigned` partitions if given."""
        allowed = None if assigned is None else set(assigned)
        return {tp: offset for tp, offset in self._safe.items()
                if self._committed.get(tp) != offset and (allowed is None or tp in allowed)}

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def pending(self) -> int:
        """Batches registered and not yet done."""
        return len(self._by_batch)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop all state of partitions this worker no longer owns (after a revocation)."""
        for tp in partitions:
            for span in self._spans.pop(tp, ()):
                spans = self._by_batch.get(span.batch)
                if spans is not None:
                    spans.remove(span)
            self._safe.pop(tp, None)
            self._committed.pop(tp, None)
        self._by_batch = {batch: spans for batch, spans in self._by_batch.items() if spans}

    def reset(self) -> None:
        """Forget everything (all uncommitted work was dropped and will be read again)."""
        self.__init__()
