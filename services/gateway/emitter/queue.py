"""The emitter's queue: the spill file, then memory, then the window in flight, kept in that order.

Accepting a record promises it is delivered or kept, so memory is backed by room in the disk
budget; when memory is full its oldest records move to the spill file, and on close everything
not yet acknowledged goes there for the next start to replay.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway.emitter.buffer import MemoryBuffer
from services.gateway.emitter.spill import Entry, SpillFile, frame_size
from services.gateway.emitter.stats import EmitterStats
from services.runtime import logs

log = logs.get("trilha.emitter")

FRAME_OVERHEAD = frame_size(b"", b"")


@dataclass
class Window:
    """Records in flight, oldest first. `spill_end`: delivering them commits the spill up to there."""

    entries: list[Entry]
    from_memory: bool
    spill_end: int | None = None
    attempts: int = 0
    frame_bytes: int = 0  # what the entries would take in the spill file


class RecordQueue:
    """Spill file, then memory: the order records reach Kafka in. `spill` is set by the emitter's start."""

    def __init__(self, memory: MemoryBuffer, stats: EmitterStats) -> None:
        self.memory = memory
        self.stats = stats
        self.spill: SpillFile | None = None
        self.inflight: Window | None = None

    @property
    def backlog(self) -> int:
        """Records not yet acknowledged by Kafka (in flight, on disk, in memory)."""
        inflight = self.inflight
        on_disk = self.spill.pending_records if self.spill else 0
        in_flight_only = len(inflight.entries) if inflight and inflight.spill_end is None else 0
        return in_flight_only + on_disk + len(self.memory)

    def disk_can_hold(self, extra: int) -> bool:
        """Could everything not yet delivered, plus `extra`, go to disk? Accepting a record promises
        that it is delivered or kept, so memory is backed by room in the disk budget."""
        assert self.spill is not None
        window = self.inflight
        unbacked = 0
        if window is not None and window.from_memory and window.spill_end is None:
            unbacked = window.frame_bytes
        reserved = self.spill.size + self.memory.bytes + FRAME_OVERHEAD * len(self.memory) + unbacked
        return reserved + extra <= self.spill.max_bytes

    def relieve_memory(self) -> None:
        """Move the oldest records in memory to the spill file, keeping the queue's order."""
        assert self.spill is not None
        if not self.persist_inflight():
            return
        moving = self.memory.take(len(self.memory), self.memory.bytes - self.memory.max_bytes // 2)
        written = self.spill.append_many(moving)
        self.stats.spilled += written
        if written < len(moving):
            self.memory.put_back(moving[written:])

    def persist_inflight(self) -> bool:
        """A window taken from memory is older than anything the spill file will get: it goes first."""
        window = self.inflight
        assert self.spill is not None
        if window is None or not window.from_memory or window.spill_end is not None:
            return True
        if self.spill.append_many(window.entries) < len(window.entries):
            return False  # truncating back is not possible with O_APPEND; the window stays in memory
        self.stats.spilled += len(window.entries)
        window.spill_end = self.spill.size
        self.spill.skip_read(self.spill.size, len(window.entries))
        return True

    def persist_all(self) -> None:
        """On close: in-flight (if from memory), then memory, go to the end of the spill file.

        `disk_can_hold` reserved the room when they were accepted, so this always fits."""
        assert self.spill is not None
        if not self.persist_inflight() and self.inflight is not None:
            self.memory.put_back(self.inflight.entries)
        remaining = self.memory.take(len(self.memory), self.memory.bytes + 1)
        written = self.spill.append_many(remaining)
        self.stats.spilled += written
        if written < len(remaining):  # only if the budget shrank between runs
            self.stats.dropped += len(remaining) - written
            log.error("records dropped on close: disk budget exhausted", dropped=len(remaining) - written,
                      spill=str(self.spill.path))

    def next_window(self, max_records: int, max_bytes: int) -> Window | None:
        """The oldest records to send next: unread spill first, then memory; None when all is sent."""
        spill = self.spill
        assert spill is not None
        if spill.has_unread:
            entries, end = spill.read(max_records, max_bytes)
            return Window(entries, from_memory=False, spill_end=end)
        if len(self.memory):
            entries = self.memory.take(max_records, max_bytes)
            frame_bytes = sum(len(k) + len(v) for k, v in entries) + FRAME_OVERHEAD * len(entries)
            return Window(entries, from_memory=True, frame_bytes=frame_bytes)
        return None

    def commit(self, window: Window) -> None:
        """Kafka acknowledged `window`: the spill file may give its range back."""
        assert self.spill is not None
        if window.spill_end is not None:
            self.spill.commit(window.spill_end, len(window.entries))
