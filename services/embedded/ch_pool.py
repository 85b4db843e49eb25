"""Pooled chDB connections, each already configured for one (database, settings) combination.

chDB takes no per-call settings, and one connection runs one query at a time, so every request
gets a connection of its own on the shared engine, with its URL settings applied by `SET`. Opening
a connection costs ~0.2 ms and a `SET` ~0.3 ms, about as much as a point query itself, while
clickhouse-connect sends the same client-wide settings with nearly every request. So idle
connections are kept per exact (database, settings) key and reused only for an identical key: a
setting can never leak from one request into another (an `insert_deduplication_token` left on a
connection would silently drop the next insert's data). Connections that may carry other state
(a `SET` or `USE` in the SQL, temporary tables) are closed instead of pooled.

All methods except `take` and `put` block on chDB and run in the engine's worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from chdb import _chdb

from services.embedded.ch_settings import quote_identifier, set_statement

PoolKey = tuple[str | None, tuple[tuple[str, str], ...]]


class ConnectionPool:
    def __init__(self, path: str, max_idle: int) -> None:
        self._path = path
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[tuple[PoolKey, Any]] = []  # most recently used last
        self._open: set[Any] = set()
        self._closed = False

    def connect(self) -> Any:
        """A new connection on the engine, tracked so shutdown can close it."""
        conn = _chdb.connect(self._path)
        with self._lock:
            self._open.add(conn)
        return conn

    def take(self, key: PoolKey) -> Any | None:
        """An idle connection configured exactly for `key`, if there is one (does not block)."""
        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index][0] == key:
                    return self._idle.pop(index)[1]
        return None

    def acquire(self, key: PoolKey, database: str | None, settings: Mapping[str, str]) -> Any:
        """An idle connection configured exactly for `key`, or a new one configured now."""
        conn = self.take(key)
        if conn is not None:
            return conn
        conn = self.connect()
        try:
            if database:
                conn.query(f"USE {quote_identifier(database)}", "TabSeparated")
            if settings:
                conn.query(set_statement(settings), "TabSeparated")
        except BaseException:
            self.discard(conn)
            raise
        return conn

    def put(self, key: PoolKey, conn: Any) -> list[Any]:
        """Return a clean connection; gives back the connections evicted to stay within bounds,
        for the caller to `discard` off the event loop."""
        with self._lock:
            if self._closed:
                return [conn]
            self._idle.append((key, conn))
            evicted = len(self._idle) - self._max_idle
            if evicted <= 0:
                return []
            dropped, self._idle = self._idle[:evicted], self._idle[evicted:]
        return [old for _, old in dropped]

    def discard(self, conn: Any) -> None:
        """Close a connection (once: after `close` everything is closed already)."""
        with self._lock:
            if conn not in self._open:
                return
            self._open.remove(conn)
        _close(conn)

    def close(self) -> None:
        """Close every connection still open, idle or not (the engine has stopped running queries)."""
        with self._lock:
            self._closed = True
            conns, self._open, self._idle = list(self._open), set(), []
        for conn in conns:
            _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # a connection that fails to close is gone either way
        pass
