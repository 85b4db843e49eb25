"""The dead-letter limit (Arroyo's): stop ingest when too many of the recent records are rejected.

A bad deploy of a producer (a renamed field, a wrong type) makes every record it sends fail the
contract; dead-lettering them all would empty the topic into the dead-letter topic, to be replayed
by hand. Past TRILHA_INGEST_DLQ_LIMIT_RATIO rejected over the last TRILHA_INGEST_DLQ_LIMIT_WINDOW
records, the worker stops instead, before dead-lettering or committing the batch that tripped the
limit: once the producer is fixed (or the limit raised), a restarted worker reads it again and
nothing is lost.
"""

from __future__ import annotations

from collections import deque


class DeadLetterLimitExceeded(RuntimeError):
    """Too large a share of the recent records was rejected: the worker stops on purpose."""


class DeadLetterLimit:
    """Counts each batch's records and rejects; the window is the latest batches holding at least
    `window` records. It is judged only once that many records have been seen, so the first few
    records of a quiet topic never stop the worker; a ratio of 1 or more never stops it."""

    def __init__(self, ratio: float, window: int) -> None:
        self.ratio, self.window = ratio, max(1, window)
        self._batches: deque[tuple[int, int]] = deque()  # (records, rejected), oldest first
        self.records = self.rejected = 0

    def count(self, records: int, rejected: int) -> None:
        """Add one batch's outcome; raises DeadLetterLimitExceeded when the window is over the limit."""
        if self.ratio >= 1.0 or records <= 0:
            return
        self._batches.append((records, rejected))
        self.records += records
        self.rejected += rejected
        while self._batches and self.records - self._batches[0][0] >= self.window:
            old_records, old_rejected = self._batches.popleft()
            self.records -= old_records
            self.rejected -= old_rejected
        if self.records >= self.window and self.rejected > self.ratio * self.records:
            raise DeadLetterLimitExceeded(
                f"{self.rejected} of the last {self.records} records were rejected, more than "
                f"TRILHA_INGEST_DLQ_LIMIT_RATIO={self.ratio:g} (over TRILHA_INGEST_DLQ_LIMIT_WINDOW={self.window}): "
                "a producer is probably sending broken records. The batch that tripped the limit was neither "
                "dead-lettered nor committed; fix the producer (or raise the limit) and start ingest again")
