"""Stored `calls` rows → the record users see: the one row converter of every reader.

A reader selects `columns(names)` (every contract field, or a subset such as the report page's),
reads them as JSONEachRow (`json_rows`, parsed with orjson) and turns each row into a record with
`to_record`: the contract's names, the timestamp as RFC 3339 UTC to the millisecond, and an absent
optional value as null (an empty IP, and a status of 0: the contract's status is an HTTP code from
100 to 599, so 0 is "none given"). Text stored with invalid UTF-8 (before the contract required
UTF-8) is shown with one U+FFFD per bad run, by ClickHouse's `toValidUTF8`, as the CSV and print
view show it; `query_id` is kept exact (the keyset seeks on it). `request`/`result` go back as
the JSON they were, or as text with the reason (`served_as_text`, see `served`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from query.access import tenant
from query.access.tenant import Statement
from query.calls import keyset
from query.calls.served import REPAIRED, loads, payload, row_from_json
from schemas import call_record_schema

# 64-bit integers (timestamp_ms) as JSON numbers, not strings.
SETTINGS = {"output_format_json_quote_64bit_integers": 0, "max_execution_time": 30}
_EXACT = ("query_id",)
_SPECIAL = {"timestamp": ("toUnixTimestamp64Milli(timestamp)", "timestamp_ms"),
            "ip": ("trilha_ip_text(ip)", "ip_text")}  # the address as people write it (migration 0006)


@cache
def fields() -> tuple[str, ...]:
    """Every contract field, in the contract's order."""
    return tuple(call_record_schema()["properties"])


@cache
def _outputs() -> dict[str, tuple[str, str]]:
    """Field → (SQL expression, output column). Computed columns get names of their own: an alias
    equal to a column name would replace that column in WHERE too (ClickHouse lets aliases be used
    there), and a filter must read the stored value through its index."""
    props = call_record_schema()["properties"]
    out = {}
    for name in fields():
        if name in _SPECIAL:
            out[name] = _SPECIAL[name]
        elif props[name].get("type") == "string" and name not in _EXACT:
            out[name] = (f"toValidUTF8({name})", f"{name}_text")
        else:
            out[name] = (name, name)
    return out


@cache
def columns(names: tuple[str, ...] | None = None) -> str:
    """The SELECT list of `names` (default: every field), plus the key (timestamp_ms, query_id)."""
    wanted = (*(names or fields()), "timestamp", "query_id")
    selected = dict.fromkeys(_outputs()[name] for name in wanted)
    return ", ".join(expr if expr == alias else f"{expr} AS {alias}" for expr, alias in selected)


def key(row: dict[str, Any]) -> keyset.Key:
    """A row's keyset position (its timestamp_ms and query_id columns)."""
    return keyset.Key(row["timestamp_ms"], row["query_id"])


def to_record(row: dict[str, Any], names: Iterable[str] | None = None) -> dict[str, Any]:
    """A stored row as the contract's record: `names` (default every field) in the contract's
    order, plus `served_as_text` when a payload could not be served as JSON."""
    record: dict[str, Any] = {}
    as_text: dict[str, str] = {}
    for name, column, kind in _plan(tuple(names) if names is not None else None):
        if kind is _PLAIN:
            record[name] = row[column]
        elif kind is _NONE_IF_EMPTY:
            record[name] = row[column] or None
        elif kind is _TIME:
            record[name] = keyset.instant(row[column])
        else:
            record[name], problem = payload(name, row[column], REPAIRED in row)
            if problem is not None:
                as_text[name] = problem
    if as_text:
        record["served_as_text"] = as_text
    return record


_PLAIN, _NONE_IF_EMPTY, _TIME, _PAYLOAD = "plain", "none if empty", "time", "payload"


@cache
def _plan(names: tuple[str, ...] | None) -> tuple[tuple[str, str, str], ...]:
    """Per field of `names` (default every field): its output column and how `to_record` turns it
    into the record's value, worked out once (to_record runs once per record a reader serves)."""
    kinds = {"timestamp": _TIME, "ip": _NONE_IF_EMPTY, "status": _NONE_IF_EMPTY, "request": _PAYLOAD,
             "result": _PAYLOAD}
    return tuple((name, name if name in ("request", "result") else _outputs()[name][1], kinds.get(name, _PLAIN))
                 for name in names or fields())


async def json_rows(ch: Any, statement: Statement, settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The statement's rows as dicts (JSONEachRow), through the tenant guard."""
    raw = await tenant.raw_query(ch, statement, settings or SETTINGS, fmt="JSONEachRow")
    return [row_from_json(line) for line in raw.splitlines() if line]


async def compact_rows(ch: Any, statement: Statement, settings: dict[str, Any] | None = None) -> list[list[Any]]:
    """The statement's rows as lists (JSONCompactEachRow), through the tenant guard."""
    raw = await tenant.raw_query(ch, statement, settings or SETTINGS, fmt="JSONCompactEachRow")
    return [loads(line) for line in raw.splitlines() if line]
