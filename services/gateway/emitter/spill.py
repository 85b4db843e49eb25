"""The emitter's spill file: records that do not fit in memory wait on disk, in order, for Kafka.

One append-only file of framed records (key length, value length, CRC32, key, value) and a small
sidecar holding the offset below which everything has been delivered. Appends only ever go to
the end and reads only move forward, so the file is a FIFO that survives a restart: the next
process that opens it replays from the delivered offset. A frame cut short by a crash (torn
tail) is detected by its length or CRC and cut off, so a half-written record is never sent.
When everything in the file has been delivered it is truncated, which is how disk space comes
back; the disk budget counts the whole file, delivered prefix included.

The file is locked (flock) by the process using it, so two emitters on one data directory never
interleave their records; `open_slot` picks the first free one of `name`, `name-2`, ...
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Entry = tuple[bytes, bytes]  # (key, value)
_HEADER = struct.Struct("<III")  # key length, value length, crc32(key + value)
_MAX_SLOTS = 32
_BLOCK = 4 * 1024 * 1024


class SpillBusy(OSError):
    """Every slot of this name is locked by another live process."""


def _frame(key: bytes, value: bytes) -> bytes:
    return _HEADER.pack(len(key), len(value), zlib.crc32(value, zlib.crc32(key))) + key + value


def frame_size(key: bytes, value: bytes) -> int:
    """Bytes a record takes on disk (what the disk budget counts)."""
    return _HEADER.size + len(key) + len(value)


class SpillFile:
    """A FIFO of records on disk: `append_many` at the end, `read` forward, `commit` what was sent."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.offset_path = path.with_suffix(path.suffix + ".offset")
        self.max_bytes = max_bytes
        self.size = 0  # bytes in the file
        self.committed = 0  # everything before this offset has been delivered
        self.read_pos = 0  # next frame `read` returns
        self.pending_records = 0  # records after `committed`
        self._unread_records = 0
        self._fd = -1

    # -- life cycle ------------------------------------------------------------------------------

    def open(self) -> bool:
        """Lock and open the file; False if another process holds it. Recovers a torn tail."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self.size = os.fstat(fd).st_size
        self.committed = min(self._read_offset(), self.size)
        valid_end, count = self._scan(self.committed)
        if valid_end < self.size:  # a torn frame from a crash: it was never acknowledged to anyone
            os.ftruncate(fd, valid_end)
            self.size = valid_end
        self.read_pos = self.committed
        self.pending_records = self._unread_records = count
        return True

    def close(self) -> None:
        """Make what was appended durable, record the delivered offset, release the lock."""
        if self._fd < 0:
            return
        os.fsync(self._fd)
        self._write_offset(self.committed)
        os.close(self._fd)  # closing releases the flock
        self._fd = -1

    # -- writing ---------------------------------------------------------------------------------

    def append_many(self, entries: Sequence[Entry]) -> int:
        """Append as many of `entries` (from the first) as the disk budget allows; returns how many."""
        frames: list[bytes] = []
        room = self.max_bytes - self.size
        for key, value in entries:
            size = frame_size(key, value)
            if size > room:
                break
            frames.append(_frame(key, value))
            room -= size
        if frames:
            data = b"".join(frames)
            os.write(self._fd, data)
            self.size += len(data)
            self.pending_records += len(frames)
            self._unread_records += len(frames)
        return len(frames)

    def skip_read(self, offset: int, records: int) -> None:
        """Mark frames up to `offset` as already read (they were appended by their in-flight sender)."""
        self.read_pos = offset
        self._unread_records -= records

    # -- reading ---------------------------------------------------------------------------------

    @property
    def has_unread(self) -> bool:
        return self.read_pos < self.size

    @property
    def is_empty(self) -> bool:
        """Nothing awaits delivery (the file may still hold a delivered prefix until truncated)."""
        return self.committed >= self.size

    def read(self, max_records: int, max_bytes: int) -> tuple[list[Entry], int]:
        """Up to `max_records`/`max_bytes` of the next unread records (at least one) and the end offset."""
        chunk = os.pread(self._fd, min(max_bytes, self.size - self.read_pos), self.read_pos)
        entries, used = _parse(chunk, max_records)
        if not entries and self.read_pos < self.size:  # one record larger than max_bytes
            entries, used = self._one_frame(self.read_pos)
            if not entries:  # unreadable (a disk error): skip the rest rather than stall forever
                used, self._unread_records = self.size - self.read_pos, len(entries)
        self.read_pos += used
        self._unread_records -= len(entries)
        return entries, self.read_pos

    # -- delivery --------------------------------------------------------------------------------

    def commit(self, offset: int, records: int) -> None:
        """Everything before `offset` is in Kafka; when that is all of it, give the disk back."""
        self.committed = offset
        self.pending_records -= records
        if self.committed >= self.size and self.read_pos >= self.size:
            os.ftruncate(self._fd, 0)
            self.size = self.committed = self.read_pos = self.pending_records = self._unread_records = 0
        self._write_offset(self.committed)

    # -- helpers ---------------------------------------------------------------------------------

    def _scan(self, start: int) -> tuple[int, int]:
        """Offset where intact frames end, and how many there are, from `start`."""
        pos, count = start, 0
        while pos < self.size:
            entries, used = _parse(os.pread(self._fd, _BLOCK, pos), 1 << 30)
            if not entries:  # a frame larger than the block, or the torn tail
                entries, used = self._one_frame(pos)
                if not entries:
                    break
            pos += used
            count += len(entries)
        return pos, count

    def _one_frame(self, pos: int) -> tuple[list[Entry], int]:
        header = os.pread(self._fd, _HEADER.size, pos)
        if len(header) < _HEADER.size:
            return [], 0
        key_len, value_len, _ = _HEADER.unpack(header)
        return _parse(os.pread(self._fd, _HEADER.size + key_len + value_len, pos), 1)

    def _read_offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _write_offset(self, offset: int) -> None:
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.offset_path)


def _parse(chunk: bytes, max_records: int) -> tuple[list[Entry], int]:
    """Whole, intact frames at the start of `chunk`; stops at a partial or corrupt one."""
    entries: list[Entry] = []
    pos, end = 0, len(chunk)
    view = memoryview(chunk)
    while len(entries) < max_records and pos + _HEADER.size <= end:
        key_len, value_len, crc = _HEADER.unpack_from(chunk, pos)
        start = pos + _HEADER.size
        stop = start + key_len + value_len
        if stop > end:
            break
        key, value = bytes(view[start:start + key_len]), bytes(view[start + key_len:stop])
        if zlib.crc32(value, zlib.crc32(key)) != crc:
            break
        entries.append((key, value))
        pos = stop
    return entries, pos


def open_slot(directory: Path, name: str, max_bytes: int) -> SpillFile:
    """The first spill file of `name` no other process holds, so each emitter replays its own."""
    for n in range(1, _MAX_SLOTS + 1):
        spill = SpillFile(directory / (f"{name}.spill" if n == 1 else f"{name}-{n}.spill"), max_bytes)
        if spill.open():
            return spill
    raise SpillBusy(f"all {_MAX_SLOTS} spill files named {name!r} in {directory} are in use by other "
                    "processes")
