"""The emitter's memory buffer: a FIFO of encoded records with a byte budget.

Bytes, not records, are what a gateway's memory pays for, and records range from a few hundred
bytes to a megabyte, so the budget counts bytes.
"""

from __future__ import annotations

from collections import deque

from services.gateway.emitter.spill import Entry


class MemoryBuffer:
    """Oldest first; `take` removes from the front, `put_back` returns records to it in order."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: deque[Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def fits(self, size: int) -> bool:
        return self.bytes + size <= self.max_bytes

    def append(self, entry: Entry) -> None:
        self._entries.append(entry)
        self.bytes += len(entry[0]) + len(entry[1])

    def take(self, max_records: int, max_bytes: int) -> list[Entry]:
        """Up to `max_records` / about `max_bytes` from the front (at least one if any)."""
        taken: list[Entry] = []
        size = 0
        entries = self._entries
        while entries and len(taken) < max_records and (not taken or size < max_bytes):
            entry = entries.popleft()
            size += len(entry[0]) + len(entry[1])
            taken.append(entry)
        self.bytes -= size
        return taken

    def put_back(self, taken: list[Entry]) -> None:
        """Undo a `take` (the records go back to the front, in their order)."""
        self._entries.extendleft(reversed(taken))
        self.bytes += sum(len(k) + len(v) for k, v in taken)
