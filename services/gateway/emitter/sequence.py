"""A gateway's numbering of its records: a gateway id and, per company, 1, 2, 3, ... with no number
skipped or given twice, kept across restarts in a small file beside the emitter's spill file.

The file lives and dies with the spill slot (`<name>.seq` beside `<name>.spill`, under the same
lock), so two processes never share a sequence. Its first line names the gateway id, made once
(the emitter's name and 8 random hex digits); each following line is one company's last number,
written as 20 fixed-width digits, then the company as JSON:

    trilha-gateway-sequence 1 my-gateway.3f9a0c1d
    00000000000000001234 "acme"

A number is written in place (`pwrite`) the moment it is given, so a killed process never gives
it again; `sync` makes the file durable (fdatasync), which the emitter does before records carrying
new numbers leave for Kafka, and on close. A lost file cannot be rebuilt: the next start makes a
new gateway id and starts again at 1, so a number of the old id is never reused.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import orjson

_MAGIC = "trilha-gateway-sequence 1"
_LINE = re.compile(rb"^(\d{20}) (\".*\")$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]")
MAX_ID = 128


def new_gateway_id(name: str) -> str:
    """`name` made fit for the contract's gateway id, and 8 random hex digits that make it unique."""
    base = _UNSAFE.sub("-", name)[:MAX_ID - 9] or "gateway"
    if not base[0].isalnum():
        base = "g" + base[:MAX_ID - 10]
    return f"{base}.{secrets.token_hex(4)}"


class Sequence:
    """`take(company)` gives the company's next number and writes it; `peek` says which it would be."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self.gateway_id = ""
        self._last: dict[str, int] = {}
        self._offset: dict[str, int] = {}  # where each company's digits sit in the file
        self._end = 0
        self._dirty = False
        self._fd = -1

    def open(self) -> Sequence:
        """Read the file (or make it, with a new gateway id); a torn last line is cut off."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        lines = os.pread(self._fd, os.fstat(self._fd).st_size, 0).split(b"\n")
        head = lines[0].decode(errors="replace")
        if not head.startswith(_MAGIC + " ") or len(lines) < 2:
            return self._start_new()
        self.gateway_id, self._end = head[len(_MAGIC) + 1:], len(lines[0]) + 1
        for line in lines[1:-1]:
            match = _LINE.match(line)
            if match is None:
                break
            company = orjson.loads(match.group(2))
            self._last[company], self._offset[company] = int(match.group(1)), self._end
            self._end += len(line) + 1
        os.ftruncate(self._fd, self._end)
        return self

    def _start_new(self) -> Sequence:
        """No sequence here (or one this process cannot read): a new gateway id, numbers from 1."""
        self.gateway_id = new_gateway_id(self.name)
        head = f"{_MAGIC} {self.gateway_id}\n".encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, head, 0)
        self._end, self._dirty = len(head), True
        self.sync()
        return self

    def peek(self, company: str) -> int:
        return self._last.get(company, 0) + 1

    def take(self, company: str) -> int:
        """The company's next number, written to the file before it is returned."""
        number = self._last.get(company, 0) + 1
        digits = b"%020d" % number
        offset = self._offset.get(company)
        if offset is None:
            line = digits + b" " + orjson.dumps(company) + b"\n"
            os.pwrite(self._fd, line, self._end)
            self._offset[company], self._end = self._end, self._end + len(line)
        else:
            os.pwrite(self._fd, digits, offset)
        self._last[company] = number
        self._dirty = True
        return number

    @property
    def dirty(self) -> bool:
        """Numbers were given since the last `sync`."""
        return self._dirty

    def sync(self) -> None:
        """Make every number given so far survive a power cut, not only a killed process."""
        if self._dirty and self._fd >= 0:
            self._dirty = False
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
