"""Fair use: what keeps one caller (a token, a source address, a company) from slowing the others.

- `Buckets`: token buckets by key. Per API token, every request takes one (429 with `Retry-After`
  beyond `TRILHA_QUERY_TOKEN_RATE` / `_BURST`); per source address, every FAILED authentication
  takes one, so guessing tokens costs the guesser, not ClickHouse.
- `CompanySlots`: how many heavy requests (q/Tags searches, CSV exports) one company runs at
  once. A search waits a moment for its company's slot, an export does not; beyond that, 429.
  Other companies' requests never wait for these slots, so one company's heavy work cannot queue
  another's lookups behind it (ClickHouse's own CPU is still shared; the slots bound how much of
  it one company takes).

Everything is in this process's memory: with N query processes the limits are N times wider.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from query.errors import TOOK_TOO_LONG, TooManyRequests, Unavailable

_MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Buckets:
    """Token buckets by key: `rate` per second refill, at most `burst` held."""

    rate: float
    burst: int
    entries: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self.entries.get(key)
        if bucket is None:
            if len(self.entries) >= _MAX_KEYS:
                self._forget_full(now)
            bucket = self.entries[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def take(self, key: str) -> float:
        """Take one; 0.0 when allowed, else the seconds until one is available again."""
        bucket = self._bucket(key, time.monotonic())
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0

    def give_back(self, key: str) -> None:
        """Return one taken by `take` (e.g. the attempt turned out not to be a failure)."""
        bucket = self._bucket(key, time.monotonic())
        bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no memory of anything); all if none has."""
        full = [k for k, b in self.entries.items() if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for key in full or list(self.entries):
            del self.entries[key]


@dataclass
class CompanySlots:
    """At most `limit` requests of one kind per company at once; `what` names them in the 429."""

    limit: int
    what: str
    held: dict[str, int] = field(default_factory=dict)
    freed: asyncio.Event = field(default_factory=asyncio.Event)

    @asynccontextmanager
    async def hold(self, company: str, wait_s: float = 0.0) -> AsyncIterator[None]:
        """A slot for `company`, waiting up to `wait_s` for one; 429 when none frees up in time."""
        deadline = time.monotonic() + wait_s
        while self.held.get(company, 0) >= self.limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TooManyRequests(f"this company already has {self.limit} {self.what} running: wait for "
                                      "one to finish, then try again", retry_after=1.0)
            self.freed.clear()
            try:
                await asyncio.wait_for(self.freed.wait(), timeout=left)
            except TimeoutError:
                continue
        self.held[company] = self.held.get(company, 0) + 1
        try:
            yield
        finally:
            self.held[company] -= 1
            if not self.held[company]:
                del self.held[company]
            self.freed.set()


class Budgeted:
    """A ClickHouse client whose `raw_query` calls share one time budget: each gets the budget's
    remainder as `max_execution_time`, and none starts once it is spent (503, "narrow it"); each
    runs on one thread, so a heavy search leaves the other cores to other companies."""

    def __init__(self, ch: Any, seconds: float) -> None:
        self._ch, self._deadline = ch, time.monotonic() + seconds

    async def raw_query(self, query: str, parameters: Any = None, settings: dict[str, Any] | None = None,
                        fmt: str | None = None) -> bytes:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise Unavailable(TOOK_TOO_LONG)
        limited = {**(settings or {}), "max_execution_time": max(1, math.ceil(left)), "max_threads": 1}
        return await self._ch.raw_query(query, parameters=parameters, settings=limited, fmt=fmt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)
