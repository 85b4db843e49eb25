"""Which token ids exist, known without a ClickHouse lookup per request: the negative cache.

A flood of random well-formed `trl_…` tokens must not cost one ClickHouse lookup each, and a
per-token negative cache cannot help there (each guess is new). So the service keeps the set of
every token id (a small table: ids are 16 hex characters), topped up incrementally. An id in the
set goes on to its row lookup; an id not in it waits for the next refresh of the set and is
refused if still absent. Refreshes are shared by every request waiting for one and start at most
once per `fresh_s` (`TRILHA_QUERY_UNKNOWN_TOKEN_S`, 1 s): any number of unknown tokens costs at
most one query per `fresh_s`, and a token created by `trilha tokens create` in another process is
never refused — its first request waits at most `fresh_s` (plus one query) for the refresh that
sees it.
"""

from __future__ import annotations

import asyncio
import time

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tokens

_OVERLAP_MS = 60_000  # re-read this much before the newest creation seen: inserts may show up late


class KnownTokenIds:
    """The set of token ids, refreshed at most every `fresh_s` seconds, and only when asked."""

    def __init__(self, fresh_s: float) -> None:
        self.fresh_s = fresh_s
        self.ids: set[str] = set()
        self.loaded_at = float("-inf")
        self.newest_ms = 0
        self.refreshes = 0  # how many queries the set cost, for the metrics
        self._lock = asyncio.Lock()

    async def exists(self, ch: AsyncClient, token_id: str) -> bool:
        """Whether `token_id` exists, as of a refresh that started after this call began."""
        if token_id in self.ids:
            return True
        await self._refresh_after(time.monotonic(), ch)
        return token_id in self.ids

    async def _refresh_after(self, asked: float, ch: AsyncClient) -> None:
        async with self._lock:
            if self.loaded_at >= asked:
                return  # a refresh that began after this request asked has finished meanwhile
            pause = self.loaded_at + self.fresh_s - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            started = time.monotonic()
            self.refreshes += 1
            since = max(0, self.newest_ms - _OVERLAP_MS) if self.ids else 0
            for token_id, created_ms in await tokens.ids_created_since(ch, since):
                self.ids.add(token_id)
                self.newest_ms = max(self.newest_ms, created_ms)
            self.loaded_at = started
