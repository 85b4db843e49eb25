"""The one chDB engine of the process, and fair access to it from the event loop.

chDB allows a single data directory per process; the engine lives as long as one connection to
it (the *owner*) is open. Queries run on other connections to the same path (see ch_pool), in
worker threads: chDB releases the GIL, so they truly run in parallel while the event loop keeps
answering (a long query never delays `/ping`). At most `max_concurrency` calls run at once; the
rest wait their turn. Every blocking chDB call goes through `run` (query work, counted against
the cap) or `background` (housekeeping such as closing connections, not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from chdb import _chdb

from services.embedded.ch_pool import ConnectionPool, PoolKey
from services.embedded.ch_sessions import Session, Sessions
from services.embedded.ch_settings import RequestOptions

T = TypeVar("T")
log = logging.getLogger(__name__)

_REAP_INTERVAL_S = 1.0


class Lease:
    """A connection lent to one request: from the pool, or its session's pinned one."""

    def __init__(self, engine: Engine, conn: Any, key: PoolKey | None = None, session: Session | None = None,
                 poolable: bool = True) -> None:
        self.engine = engine
        self.conn = conn
        self._key = key
        self._session = session
        self._poolable = poolable
        self._released = False

    async def release(self, clean: bool) -> None:
        """Give the connection back; `clean` says its state is as it was handed out (pooled only then)."""
        if self._released:
            return
        self._released = True
        if self._session is not None:
            self.engine.sessions.release(self._session)
            return
        if clean and self._poolable and self._key is not None:
            evicted = self.engine.pool.put(self._key, self.conn)
        else:
            evicted = [self.conn]
        for conn in evicted:
            await self.engine.background(self.engine.pool.discard, conn)


class Engine:
    def __init__(self, data_dir: str, max_concurrency: int = 4) -> None:
        self.path = os.path.abspath(data_dir)
        self.version = ""
        self.timezone = "UTC"
        self._executor = ThreadPoolExecutor(max_concurrency + 2, thread_name_prefix="chdb")
        self._slots = asyncio.Semaphore(max_concurrency)
        self.pool = ConnectionPool(self.path, max_idle=2 * max_concurrency + 4)
        self.sessions = Sessions()
        self._owner: Any = None
        self._reaper: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Open the engine (creating the data directory) and learn its version and time zone."""
        os.makedirs(self.path, exist_ok=True)
        _ensure_unlocked(self.path)
        self._owner = await self.run(_chdb.connect, self.path)  # not pooled: closed last
        result = await self.run(self._owner.query, "SELECT version(), timezone()", "TabSeparated")
        self.version, self.timezone = result.bytes().decode().strip().split("\t")
        self._reaper = asyncio.create_task(self._reap_sessions())

    async def close(self) -> None:
        """Wait for running chDB calls, then close every connection, the owner last."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        self._closing = True
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        owner, self._owner = self._owner, None
        self.sessions.remove_all()
        self.pool.close()  # closes session connections too: they were opened through the pool
        if owner is not None:
            with contextlib.suppress(Exception):
                owner.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking chDB call in a worker thread, within the concurrency cap."""
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def background(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Run a short blocking call (close a connection, cancel a query) off the event loop, outside
        the cap. Once the engine is closing it is skipped: `close` then closes every connection."""
        if self._closing:
            return None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def lease(self, options: RequestOptions) -> Lease:
        """A connection set up with the request's database and settings (or its session's)."""
        if options.session_id:
            session = self.sessions.claim(options)
            try:
                await self.run(session.prepare, options, self.pool.connect)
            except BaseException:
                self.sessions.release(session)
                raise
            return Lease(self, session.conn, session=session)
        key = options.pool_key
        conn = self.pool.take(key)  # the common case, without a trip to a worker thread
        if conn is None:
            conn = await self.run(self.pool.acquire, key, options.database, options.settings)
        return Lease(self, conn, key=key, poolable=not options.one_shot)

    async def _reap_sessions(self) -> None:
        while True:
            await asyncio.sleep(_REAP_INTERVAL_S)
            for session in self.sessions.expired(time.monotonic()):
                if session.conn is not None:
                    try:
                        await self.background(self.pool.discard, session.conn)
                    except Exception:
                        log.exception("closing expired session %s", session.session_id)


def _ensure_unlocked(path: str) -> None:
    """Fail clearly if another process serves `path`: ClickHouse holds an flock on its `status`
    file, and chDB would otherwise fail with a vague message (printing the real one itself)."""
    status = os.path.join(path, "status")
    if not os.path.exists(status):
        return
    with open(status, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("another process already serves this data directory") from None
        fcntl.flock(handle, fcntl.LOCK_UN)
