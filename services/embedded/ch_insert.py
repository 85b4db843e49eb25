"""Streaming an `INSERT ... FORMAT fmt` body into chDB in constant memory.

The data goes to chDB's streaming inserter (`send_insert` / `insert_append` / `insert_done`) about
a megabyte of raw body at a time; decompression happens in the worker thread together with the
append, so the event loop only moves bytes. While chDB parses one batch the next is read from the
socket. A body that arrived whole (the common case for small batches) costs a single worker call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from services.embedded.ch_body import Insert, RequestBody
from services.embedded.ch_engine import Lease
from services.embedded.ch_http_codec import Decoder


class _InsertJob:
    """The blocking side of one insert: every method runs in a worker thread, one at a time."""

    def __init__(self, conn: Any, statement: str, fmt: str, decoder: Decoder) -> None:
        self._conn = conn
        self._statement = statement
        self._fmt = fmt
        self._decoder = decoder
        self._handle: Any = None
        self._done = False

    def open(self, plain: bytes) -> None:
        self._handle = self._conn.send_insert(self._statement, self._fmt)
        self._append(plain)

    def push(self, raw: bytes, last: bool) -> None:
        self._append(self._decoder.feed(raw) if raw else b"")
        if last:
            self._append(self._decoder.finish())

    def finish(self) -> Any:
        self._done = True
        return self._conn.insert_done(self._handle)

    def run_whole(self, plain: bytes) -> Any:
        self.open(plain)
        return self.finish()

    def cancel(self) -> None:
        if self._handle is not None and not self._done:
            self._done = True
            with contextlib.suppress(Exception):
                self._conn.insert_cancel(self._handle)

    def _append(self, data: bytes) -> None:
        if data:
            self._conn.insert_append(self._handle, data)


async def stream_insert(lease: Lease, insert: Insert, body: RequestBody) -> dict[str, str]:
    """Run the insert; returns the X-ClickHouse-Summary fields. Raises on failure (nothing committed
    by this call unless chDB had already written whole blocks, as ClickHouse itself does)."""
    engine = lease.engine
    started = time.perf_counter_ns()
    job = _InsertJob(lease.conn, insert.statement, insert.fmt, body.decoder)
    try:
        if insert.complete:
            result = await engine.run(job.run_whole, insert.data)
        else:
            await engine.run(job.open, insert.data)
            raw = await body.read_raw()
            while True:
                last = body.at_eof
                pushing = asyncio.ensure_future(engine.run(job.push, raw, last))
                try:
                    raw = b"" if last else await body.read_raw()
                finally:
                    await pushing
                if last:
                    break
            result = await engine.run(job.finish)
    except BaseException:
        await asyncio.shield(engine.background(job.cancel))
        raise
    rows, size = result.rows_written(), result.bytes_written()
    return {"written_rows": str(rows), "written_bytes": str(size), "result_rows": str(rows),
            "result_bytes": str(size), "elapsed_ns": str(time.perf_counter_ns() - started)}
