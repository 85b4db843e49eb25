"""Reading a request as ClickHouse does: the `query` parameter, a line break, then the body.

The body may be compressed and may be huge (an INSERT's data). Only as much is read as is needed
to tell what the request is: for an `INSERT ... FORMAT name` the statement is split off and the
data after it is left in the stream, to be fed to chDB chunk by chunk; anything else is read
whole as one SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import StreamReader

from services.embedded import ch_sql
from services.embedded.ch_errors import QUERY_IS_TOO_LARGE, SYNTAX_ERROR, ChError
from services.embedded.ch_http_codec import Decoder

MAX_QUERY_BYTES = 64 * 1024 * 1024  # a statement (not insert data) larger than this is refused
READ_BATCH_BYTES = 1024 * 1024  # raw body bytes handed to chDB per call while streaming an insert
_PEEK_BYTES = 4096  # read at least this much (or all) before deciding what a request is


@dataclass
class Query:
    """A whole statement, data included (SELECT, DDL, INSERT ... VALUES, INSERT ... SELECT)."""

    sql: str


@dataclass
class Insert:
    """`INSERT ... FORMAT fmt`; `data` is the decoded data read so far, the rest is in the body."""

    statement: str
    fmt: str
    data: bytes
    complete: bool  # the body has been read to its end


class RequestBody:
    def __init__(self, content: StreamReader | None, decoder: Decoder, query_param: str) -> None:
        self._content = content
        self.decoder = decoder
        self._buffer = bytearray((query_param + "\n").encode() if query_param else b"")
        self.at_eof = content is None

    async def read_raw(self, size: int = READ_BATCH_BYTES) -> bytes:
        """Up to about `size` raw (still compressed) bytes; b"" once the body is exhausted."""
        if self.at_eof or self._content is None:
            return b""
        parts: list[bytes] = []
        total = 0
        while total < size:
            chunk = await self._content.readany()
            if not chunk:
                self.at_eof = True
                break
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)

    async def _fill(self, size: int) -> None:
        raw = await self.read_raw(size)
        if raw:
            self._buffer += self.decoder.feed(raw)
        if self.at_eof:
            self._buffer += self.decoder.finish()
        if len(self._buffer) > MAX_QUERY_BYTES:
            raise ChError.make(QUERY_IS_TOO_LARGE, f"Query is too large (more than {MAX_QUERY_BYTES} bytes)")

    async def classify(self) -> Query | Insert:
        """Read just enough to tell an insert with streamed data from a statement to run whole."""
        while not self.at_eof and len(self._buffer) < _PEEK_BYTES:
            await self._fill(_PEEK_BYTES)
        while True:
            text = self._buffer.decode("latin-1")  # byte offsets == character offsets
            first = next(ch_sql.tokens(text), None)
            if first is None and self.at_eof:
                raise ChError.make(SYNTAX_ERROR, "Empty query")
            if first is not None and (first.end < len(text) or self.at_eof):
                if first.text.upper() != "INSERT":
                    return await self._whole()
                head = ch_sql.insert_head(text + "\n" if self.at_eof else text)
                if head is not None:
                    statement = head.statement.encode("latin-1").decode("utf-8", "replace")
                    data = bytes(self._buffer[head.data_offset:])
                    return Insert(statement, head.fmt, data, self.at_eof)
                if self.at_eof:
                    return Query(self._buffer.decode("utf-8", "replace"))
            await self._fill(READ_BATCH_BYTES)

    async def _whole(self) -> Query:
        while not self.at_eof:
            await self._fill(READ_BATCH_BYTES)
        return Query(self._buffer.decode("utf-8", "replace"))
