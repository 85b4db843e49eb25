"""Runs the Events API's SQL and turns rows back into call records.

Results are read as JSONEachRow and parsed with orjson (clickhouse-connect's Python row
conversion would cost more than the query for pages of large `result`s). Each record carries every
contract field; `request` and `result` are parsed back to the JSON they were (the stored text is the
original JSON; text that does not parse is returned as a string).

A q/Tags page is found by walking the driver term's keys newest first from the page's keyset
position: with one term the page is those keys' rows; with several, candidates are fetched in
growing batches and only rows carrying every term kept, until the page is full or the driver term
has no more rows. The driver is the rarest term, chosen once per search and kept in the cursor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from query import events_sql
from schemas import call_record_schema

FIRST_CANDIDATES = 256
MAX_CANDIDATES = 65_536
DRIVER_PROBE_CAP = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TERMS_CACHE: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = OrderedDict()
_TERMS_CACHE_MAX = 4096


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last record's (timestamp in ms, query_id), and the driver term."""

    timestamp_ms: int
    query_id: str
    driver: int


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next: Position | None


def millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


async def _rows(ch: AsyncClient, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    raw = await ch.raw_query(sql, parameters=parameters, settings=events_sql.SETTINGS, fmt="JSONEachRow")
    return [orjson.loads(line) for line in raw.splitlines() if line]


async def _compact(ch: AsyncClient, sql: str, parameters: dict[str, Any]) -> list[list[Any]]:
    raw = await ch.raw_query(sql, parameters=parameters, settings=events_sql.SETTINGS, fmt="JSONCompactEachRow")
    return [orjson.loads(line) for line in raw.splitlines() if line]


async def record_by_query_id(ch: AsyncClient, company: str, query_id: str,
                             around: tuple[datetime, datetime] | None) -> dict[str, Any] | None:
    """The record, or None. A date that is wrong only costs the fallback query, never a miss."""
    params: dict[str, Any] = {"company": company, "query_id": query_id}
    if around is not None:
        rows = await _rows(ch, events_sql.by_query_id_near(),
                           {**params, "lo": millis(around[0]), "hi": millis(around[1])})
        if rows:
            return to_record(rows[0])
    rows = await _rows(ch, events_sql.by_query_id(), params)
    return to_record(rows[0]) if rows else None


async def search_terms(ch: AsyncClient, q: str | None, tags: dict[str, str]) -> list[str]:
    """Sorted normalised terms; cached, since the functions are pure and searches repeat while paging."""
    key = (q or "", tuple(sorted(tags.items())))
    if key in _TERMS_CACHE:
        _TERMS_CACHE.move_to_end(key)
        return _TERMS_CACHE[key]
    rows = await _compact(ch, events_sql.search_terms(), {"q": key[0], "tag_keys": [k for k, _ in key[1]],
                                                         "tag_values": [v for _, v in key[1]]})
    terms = sorted(rows[0][0])
    _TERMS_CACHE[key] = terms
    if len(_TERMS_CACHE) > _TERMS_CACHE_MAX:
        _TERMS_CACHE.popitem(last=False)
    return terms


async def search(ch: AsyncClient, company: str, terms: list[str], day: tuple[datetime, datetime] | None,
                 page_size: int, position: Position | None) -> Page:
    """One page of records carrying every term, newest first, after `position`."""
    params: dict[str, Any] = {"company": company}
    if day is not None:
        params.update(lo=millis(day[0]), hi=millis(day[1]))
    driver = position.driver if position else await _rarest(ch, terms, params, day is not None)
    params["driver"] = terms[driver]
    if len(terms) == 1:
        rows = await _rows(ch, events_sql.page_single_term(position is not None, day is not None),
                           {**params, **_after(position), "candidates": page_size + 1, "limit": page_size + 1})
    else:
        rows = await _intersect(ch, terms, params, position, day is not None, page_size + 1)
    records = [to_record(row) for row in rows[:page_size]]
    more = len(rows) > page_size
    last = rows[page_size - 1] if more else None
    return Page(records, Position(last["timestamp_ms"], last["query_id"], driver) if last else None)


async def _rarest(ch: AsyncClient, terms: list[str], params: dict[str, Any], day: bool) -> int:
    if len(terms) == 1:
        return 0
    counts = await _compact(ch, events_sql.term_counts(len(terms), after=False, day=day),
                            {**params, **{f"term{n}": t for n, t in enumerate(terms)}, "cap": DRIVER_PROBE_CAP})
    return min(counts, key=lambda row: (row[1], row[0]))[0]


async def _intersect(ch: AsyncClient, terms: list[str], params: dict[str, Any], position: Position | None,
                     day: bool, wanted: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after, batch = position, max(FIRST_CANDIDATES, 4 * wanted)
    while len(found) < wanted:
        keys = await _compact(ch, events_sql.driver_keys(after is not None, day),
                              {**params, **_after(after), "candidates": batch})
        if not keys:
            break
        found += await _rows(ch, events_sql.rows_with_all_terms(),
                             {**params, "key_ts": [k[0] for k in keys], "key_ids": [k[1] for k in keys],
                              "terms": terms, "limit": wanted - len(found)})
        if len(keys) < batch:
            break
        after, batch = Position(keys[-1][0], keys[-1][1], 0), min(batch * 2, MAX_CANDIDATES)
    return found


def _after(position: Position | None) -> dict[str, Any]:
    return {"after_ts": position.timestamp_ms, "after_id": position.query_id} if position else {}


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the contract's record: every field, in the contract's order."""
    record: dict[str, Any] = {}
    for name in call_record_schema()["properties"]:
        if name == "timestamp":
            moment = _EPOCH + timedelta(milliseconds=row["timestamp_ms"])
            record[name] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        elif name == "ip":
            record[name] = _ip(row["ip_text"])
        elif name in ("request", "result"):
            record[name] = _json(row[name])
        else:
            record[name] = row[name]
    return record


def _ip(text: str) -> str | None:
    if text in ("", "::"):
        return None
    return text.removeprefix("::ffff:") if text.startswith("::ffff:") and "." in text else text


def _json(text: str) -> Any:
    if text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
