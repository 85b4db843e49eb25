"""Running a statement and sending its result: whole when small, streamed when large.

A result in a streamable format (see ch_formats) is pulled from chDB's streaming query a batch at
a time; if it ends within the first batch it goes out as one plain response with a
Content-Length (one worker call, the fast path for point queries), otherwise it is streamed with
chunked encoding so memory stays flat whatever the result size. Other formats and statements
without a result (DDL, SET, INSERT ... VALUES) run in one call.

A failure before the first byte is sent becomes a normal error response. A failure after that
cannot change the status any more: as ClickHouse 25.11+ does, the response carries an
`X-ClickHouse-Exception-Tag` header and the error is appended to the body between
`__exception__` markers carrying that tag, which clickhouse-connect detects and raises as an
error, so a cut-off result is never taken for a complete one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from services.embedded import ch_formats, ch_sql
from services.embedded.ch_engine import Lease
from services.embedded.ch_errors import ChError, from_exception

BATCH_BYTES = 1024 * 1024  # result bytes gathered per worker call


@dataclass
class Statement:
    sql: str
    fmt: str
    params: dict[str, str]
    stream: bool  # the result may be streamed (see ch_formats.streamable)


@dataclass
class _Batch:
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    summary: dict[str, str] = field(default_factory=dict)


class _Cursor:
    """The blocking side of one query; every method runs in a worker thread, one at a time."""

    def __init__(self, conn: Any, statement: Statement) -> None:
        self._conn = conn
        self._statement = statement
        self._stream: Any = None
        self._first = True
        self.started_ns = time.perf_counter_ns()

    def start(self) -> _Batch:
        st = self._statement
        self.started_ns = time.perf_counter_ns()
        if not st.stream:
            batch = _whole_result(self._conn.query(st.sql, st.fmt, params=st.params), self.started_ns)
            if not batch.chunks[0] and st.fmt == "Native" and ch_sql.is_select(st.sql):
                batch.chunks[0] = self._native_header()
            return batch
        self._stream = self._conn.send_query(st.sql, st.fmt, params=st.params)
        return self.more()

    def more(self) -> _Batch:
        batch, size = _Batch(), 0
        while size < BATCH_BYTES:
            result = self._conn.streaming_fetch_result(self._stream)
            if result is None or result.rows_read() == 0:
                self._stream, batch.done = None, True
                if self._first:
                    batch.chunks.append(self._empty_result())
                break
            chunk = result.bytes()
            if not self._first:
                chunk = ch_formats.strip_header(self._statement.fmt, chunk)
            self._first = False
            batch.chunks.append(chunk)
            size += len(chunk)
        return batch

    def _empty_result(self) -> bytes:
        """The header an empty result still has, which chDB's stream leaves out."""
        st = self._statement
        if not ch_formats.needs_header(st.fmt):
            return b""
        if st.fmt != "Native":  # chDB does write headers when not streaming
            return self._conn.query(st.sql, st.fmt, params=st.params).bytes() or b""
        return self._native_header()

    def _native_header(self) -> bytes:
        """The empty Native block ClickHouse sends for an empty result (chDB sends no bytes at all)."""
        st = self._statement
        try:
            described = self._conn.query(f"DESCRIBE TABLE ({ch_sql.without_format(st.sql)})",
                                         "JSONCompactEachRow", params=st.params).bytes()
        except Exception:  # best effort: an empty body is still a valid empty result
            return b""
        rows = [json.loads(line) for line in described.splitlines() if line]
        return ch_formats.native_header([(row[0], row[1]) for row in rows])

    def cancel(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                self._conn.streaming_cancel_query(stream)


def _whole_result(result: Any, started_ns: int) -> _Batch:
    body = result.bytes() or b""
    summary = {
        "read_rows": str(result.storage_rows_read()), "read_bytes": str(result.storage_bytes_read()),
        "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
        "result_rows": str(result.rows_read()), "result_bytes": str(len(body)),
        "elapsed_ns": str(time.perf_counter_ns() - started_ns),
    }
    return _Batch([body], True, summary)


async def respond(request: web.Request, lease: Lease, statement: Statement, headers: Mapping[str, str],
                  clean: bool) -> web.StreamResponse:
    """Run `statement` on the leased connection and answer `request`; always releases the lease.

    `headers` are the response headers so far; `clean` says whether the connection may be pooled
    again afterwards (the SQL does not leave state on it).
    """
    cursor = _Cursor(lease.conn, statement)
    try:
        first = await lease.engine.run(cursor.start)
    except BaseException:
        await lease.release(clean)
        raise
    if first.done:
        await lease.release(clean)
        summary = first.summary or {"result_bytes": str(sum(map(len, first.chunks))),
                                    "elapsed_ns": str(time.perf_counter_ns() - cursor.started_ns)}
        return web.Response(body=b"".join(first.chunks), headers={**headers, **summary_header(summary)})
    return await _stream(request, lease, cursor, first, headers, clean)


async def _stream(request: web.Request, lease: Lease, cursor: _Cursor, batch: _Batch,
                  headers: Mapping[str, str], clean: bool) -> web.StreamResponse:
    tag = secrets.token_hex(8)
    elapsed = {"elapsed_ns": str(time.perf_counter_ns() - cursor.started_ns)}
    response = web.StreamResponse(
        headers={**headers, **summary_header(elapsed), "X-ClickHouse-Exception-Tag": tag})
    response.enable_chunked_encoding()
    finished = False
    try:
        await response.prepare(request)
        while True:
            for chunk in batch.chunks:
                await response.write(chunk)
            if batch.done:
                finished = True
                break
            try:
                batch = await lease.engine.run(cursor.more)
            except Exception as exc:  # the status line is gone: report in-band, then end the body
                await response.write(exception_block(tag, from_exception(exc), lease.engine.version))
                break
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away: nobody to answer
    finally:
        if not finished:
            await asyncio.shield(lease.engine.background(cursor.cancel))
        await lease.release(clean and finished)
    return response


def exception_block(tag: str, error: ChError, version: str) -> bytes:
    """ClickHouse's in-band error: `__exception__`, tag, message, its length and tag, `__exception__`."""
    message, marker = error.body(version), tag.encode()
    return b"__exception__\r\n%s\r\n%s%d %s\r\n__exception__\r\n" % (marker, message, len(message), marker)


def summary_header(fields: Mapping[str, str]) -> dict[str, str]:
    """X-ClickHouse-Summary with every field clickhouse-connect's QuerySummary may read."""
    names = ("read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read", "result_rows",
             "result_bytes", "elapsed_ns")
    summary = {**dict.fromkeys(names, "0"), **fields}
    return {"X-ClickHouse-Summary": "{" + ",".join(f'"{k}":"{v}"' for k, v in summary.items()) + "}"}
