"""Stored rows → values the service can always serve, whatever was stored before the contract
bounded it (invalid UTF-8, payloads nested beyond what a JSON encoder takes, text that is not JSON).

The rule: never fail an answer because of one row. A line of ClickHouse's JSON output with invalid
UTF-8 (ClickHouse writes a String's bytes as they are) is read again with the bad bytes replaced by
U+FFFD, and a `request`/`result` that cannot be given back as the JSON it was is given back as its
text, with the reason, so the caller sees the record and knows it was not served as JSON.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from schemas import call_record_schema
from schemas.json_text import text_problem

REPLACEMENT = "\ufffd"
REPAIRED = "\x00repaired"  # key set on a row whose line needed U+FFFD (no column can be named so)


def loads(line: bytes) -> Any:
    """One line of ClickHouse's JSON output; invalid UTF-8 in it becomes U+FFFD instead of an error."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return orjson.loads(line.decode("utf-8", "replace"))


def row_from_json(line: bytes) -> dict[str, Any]:
    """A JSONEachRow line as a dict, marked `REPAIRED` when it needed U+FFFD."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        row = loads(line)
        row[REPAIRED] = True
        return row


@cache
def max_depth(name: str) -> int:
    """The contract's nesting bound of a payload field (x-maxDepth)."""
    return int(call_record_schema()["properties"][name]["x-maxDepth"])


def payload(name: str, text: str, repaired: bool = False) -> tuple[Any, str | None]:
    """The stored JSON text of `request`/`result` as the JSON value it was, or as the text itself
    with the reason it could not be served as JSON (what the contract refuses today is not served
    as JSON either, so a client never gets a value the contract would not have let in)."""
    if text == "":
        return None, None
    if repaired and REPLACEMENT in text:
        return text, f"{name} was stored with invalid UTF-8 (shown as U+FFFD)"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return text, f"not JSON as stored ({exc})"
    problem = text_problem(text.encode(), max_depth(name))
    if problem is not None:
        return text, f"{name} {problem}"
    return value, None
