"""Runs the Events API's SQL, each statement scoped to the caller's company, and answers records.

Rows are read and turned into records by `query.calls.records` (JSONEachRow parsed with orjson:
clickhouse-connect's Python row conversion would cost more than the query for pages of large
`result`s), the converter every reader of `calls` shares; unmerged copies are dropped by the one
rule of `query.calls.newest`. Each record carries every contract field; `request` and `result` are
parsed back to the JSON they were (the stored text is the original JSON).

Every stored row is answered, whatever was stored before the contract bounded it (`served`): a
string with invalid UTF-8 is served with U+FFFD in place of the bad bytes, and a `request`/`result`
that cannot be served as JSON (not JSON, invalid UTF-8, nested deeper than the contract's
x-maxDepth, a number no JSON reader can hold) is served as its text, a JSON string, and named with
the reason in the record's `served_as_text` object.

A q/Tags page is found by walking the driver term's keys newest first from the page's keyset
position, one time window at a time (see `_Walk`): with one term the page is those keys' rows; with
several, candidates are fetched in growing batches and only rows carrying every term kept, until
the page is full or the driver term has no more rows. The driver is the rarest term, chosen once
per search; it and the window size that worked travel in the cursor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access.tenant import Statement, TenantScope
from query.calls import keyset, newest, records
from query.calls.keyset import Key, millis
from query.calls.records import compact_rows, json_rows, to_record
from query.events import sql as events_sql

FIRST_CANDIDATES = 256
WINDOWS: tuple[timedelta | None, ...] = (timedelta(days=1), timedelta(days=8), timedelta(days=64),
                                         timedelta(days=512), None)
MAX_CANDIDATES = 65_536
DRIVER_PROBE_CAP = 10_000
_TERMS_CACHE: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = OrderedDict()
_TERMS_CACHE_MAX = 4096


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last record's (timestamp in ms, query_id), the driver term, and the
    time window (index into WINDOWS) the next page starts with."""

    timestamp_ms: int
    query_id: str
    driver: int
    window: int = 0


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next: Position | None


async def record_by_query_id(ch: AsyncClient, scope: TenantScope, query_id: str,
                             around: tuple[datetime, datetime] | None) -> dict[str, Any] | None:
    """The record, or None. A date that is wrong only costs the fallback queries, never a miss."""
    params: dict[str, Any] = {"query_id": query_id}
    if around is not None:
        rows = await json_rows(ch, scope.statement(events_sql.by_query_id_between(),
                                                   {**params, "lo": millis(around[0]), "hi": millis(around[1])}))
        if rows:
            return to_record(rows[0])
    rows = await json_rows(ch, scope.statement(events_sql.by_query_id(), params))
    return to_record(rows[0]) if rows else None


async def search_terms(ch: AsyncClient, q: str | None, tags: dict[str, str]) -> list[str]:
    """Sorted normalised terms; cached, since the functions are pure and searches repeat while paging."""
    key = (q or "", tuple(sorted(tags.items())))
    if key in _TERMS_CACHE:
        _TERMS_CACHE.move_to_end(key)
        return _TERMS_CACHE[key]
    rows = await compact_rows(ch, Statement(events_sql.search_terms(), {
        "q": key[0], "tag_keys": [k for k, _ in key[1]], "tag_values": [v for _, v in key[1]]}))
    terms = sorted(rows[0][0])
    _TERMS_CACHE[key] = terms
    if len(_TERMS_CACHE) > _TERMS_CACHE_MAX:
        _TERMS_CACHE.popitem(last=False)
    return terms


async def search(ch: AsyncClient, scope: TenantScope, terms: list[str], day: tuple[datetime, datetime] | None,
                 page_size: int, position: Position | None) -> Page:
    """One page of records carrying every term, newest first, after `position`."""
    walk = _Walk(terms, day, position)
    if position is None:
        walk.driver = await _rarest(ch, scope, walk)
    wanted = page_size + 1
    rows: list[dict[str, Any]] = []
    batch = max(FIRST_CANDIDATES, 4 * wanted)
    while len(rows) < wanted:
        params, final = walk.params()
        if len(terms) == 1:
            rows += await _single_term(ch, scope, params, wanted - len(rows))
            if len(rows) == wanted:
                break
        else:
            keys = await compact_rows(ch, scope.statement(events_sql.driver_keys(*_bounds(params)),
                                                          {**params, "candidates": batch}))
            rows += await _carrying_all(ch, scope, [Key(*k) for k in keys], terms, wanted - len(rows))
            if len(keys) == batch:  # the window may hold more: continue below the last candidate
                walk.after, batch = Key(*keys[-1]), min(batch * 2, MAX_CANDIDATES)
                continue
        if final:
            break
        walk.next_window()
    page = [to_record(row) for row in rows[:page_size]]
    if len(rows) <= page_size:
        return Page(page, None)
    last = records.key(rows[page_size - 1])
    return Page(page, Position(last.timestamp_ms, last.query_id, walk.driver, max(0, walk.window - 1)))


async def _single_term(ch: AsyncClient, scope: TenantScope, params: dict[str, Any], need: int
                       ) -> list[dict[str, Any]]:
    """Up to `need` records of the window's next driver positions (one round trip, unless unmerged
    copies took places: then the read goes on below the last key)."""
    async def read(limit: int, after: Key | None) -> list[dict[str, Any]]:
        bound = {**params, **keyset.after_params(after)} if after else params
        return await json_rows(ch, scope.statement(events_sql.page_single_term(*_bounds(bound)),
                                                   {**bound, "candidates": limit, "limit": limit}))
    return await newest.rows(read, records.key, need, slack=0)


async def _carrying_all(ch: AsyncClient, scope: TenantScope, keys: list[Key], terms: list[str], need: int
                        ) -> list[dict[str, Any]]:
    """Of the candidate keys (newest first), up to `need` records carrying every term."""
    async def read(limit: int, after: Key | None) -> list[dict[str, Any]]:
        below = [k for k in keys if after is None or k < after]
        if not below:
            return []
        return await json_rows(ch, scope.statement(events_sql.rows_with_all_terms(), {
            "key_ts": [k.timestamp_ms for k in below], "key_ids": [k.query_id for k in below], "terms": terms,
            "limit": limit}))
    return await newest.rows(read, records.key, need, slack=0) if keys else []


def _bounds(params: dict[str, Any]) -> tuple[bool, bool, bool]:
    """Which of the keyset position, window start and window end the query binds."""
    return "after_ts" in params, "lo" in params, "hi" in params


class _Walk:
    """A newest-first walk through time windows below a keyset position.

    Each query is bounded below (`timestamp >= lo`) so ClickHouse prunes every partition and part
    older than the window; a window that runs out moves the walk below it and widens the next one
    (1 day, 8, 64, 512, then unbounded), so sparse terms take a few cheap queries and dense ones one.
    """

    def __init__(self, terms: list[str], day: tuple[datetime, datetime] | None, position: Position | None) -> None:
        self.terms = terms
        self.day_lo = millis(day[0]) if day else None
        self.hi = millis(day[1]) if day else None
        self.after = Key(position.timestamp_ms, position.query_id) if position else None
        self.top = position.timestamp_ms if position else (self.hi or millis(datetime.now(UTC)))
        self.driver = position.driver if position else 0
        self.window = min(position.window, len(WINDOWS) - 1) if position else 0

    def lo(self) -> tuple[int | None, bool]:
        """The window's lower bound and whether it is the last window (nothing below it)."""
        span = WINDOWS[self.window]
        lo = None if span is None else self.top - span // timedelta(milliseconds=1)
        if self.day_lo is not None and (lo is None or lo <= self.day_lo):
            return self.day_lo, True
        return lo, lo is None

    def params(self) -> tuple[dict[str, Any], bool]:
        lo, final = self.lo()
        params: dict[str, Any] = {"driver": self.terms[self.driver]}
        if lo is not None:
            params["lo"] = lo
        if self.hi is not None:
            params["hi"] = self.hi
        if self.after is not None:
            params.update(keyset.after_params(self.after))
        return params, final

    def next_window(self) -> None:
        lo, _ = self.lo()
        assert lo is not None
        self.after, self.top = Key(lo, ""), lo  # everything at or above lo has been read
        self.window = min(self.window + 1, len(WINDOWS) - 1)


async def _rarest(ch: AsyncClient, scope: TenantScope, walk: _Walk) -> int:
    """The term with the fewest rows in the first window (or, if none has any, in all time)."""
    if len(walk.terms) == 1:
        return 0
    for window in (walk.window, len(WINDOWS) - 1):
        walk.window = window
        params, _ = walk.params()
        params.update({f"term{n}": t for n, t in enumerate(walk.terms)}, cap=DRIVER_PROBE_CAP)
        counts = await compact_rows(ch, scope.statement(events_sql.term_counts(len(walk.terms), *_bounds(params)[1:]),
                                                        params))
        if any(row[1] for row in counts):
            break
    walk.window = 0
    return min(counts, key=lambda row: (row[1], row[0]))[0]
