"""The Events API request body, read and checked against the seed's rules.

Parameters (names exactly as the seed platform spells them): `QueryId`, `q`, `Tags`, `QueryDate`,
`DateFormat`, `PageSize`, `Cursor`, `Proof`. Rules, each a 400 naming the parameter when broken:
- one of QueryId, q or Tags is required; QueryId finds one record, so it is not combined with q/Tags;
- DateFormat only with QueryDate (default `yyyy-MM-dd`, .NET-style patterns);
- PageSize (1-1000, default 50) and Cursor only with q or Tags;
- q must be `key{value}` items, comma-separated, as the call-record contract defines it (its
  pattern is loaded from `schemas/call_record.v1.json`, not restated here);
- unknown parameters are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from query import parsing
from query.errors import BadRequest
from query.events import dotnet_dates
from schemas import call_record_schema

ALLOWED = ("QueryId", "q", "Tags", "QueryDate", "DateFormat", "PageSize", "Cursor", "Proof")
DEFAULT_FORMAT = "yyyy-MM-dd"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
MAX_TERMS = 32
QUERY_ID_WINDOW = timedelta(days=2)
MAX_DATE_TEXT = 64
YEARS = (1970, 2200)  # as the report's from/until: records cannot be older, and the window math stays in range


@dataclass(frozen=True)
class EventsRequest:
    """A checked request. `query_date` is the instant QueryDate names (UTC if it has no offset)."""

    query_id: str | None = None
    q: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    query_date: datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    proof: bool = False  # each record's inclusion proof and the checkpoint (services/proofs)

    @property
    def day(self) -> tuple[datetime, datetime] | None:
        """[start, end) of QueryDate's calendar day (in the offset it was given in), for q/Tags."""
        if self.query_date is None:
            return None
        start = self.query_date.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)

    @property
    def around(self) -> tuple[datetime, datetime] | None:
        """[start, end) within which a QueryId is looked for first: the day given ± 2 days."""
        day = self.day
        return (day[0] - QUERY_ID_WINDOW, day[1] + QUERY_ID_WINDOW) if day else None


@cache
def _q_pattern() -> re.Pattern[str]:
    return re.compile(call_record_schema()["properties"]["q"]["pattern"])


@cache
def _q_limits() -> tuple[int, dict[str, Any]]:
    props = call_record_schema()["properties"]
    return props["q"]["maxLength"], props["tags"]


def parse(body: dict[str, Any]) -> EventsRequest:
    """Check every parameter and rule; the first problem found is the 400 the caller sees."""
    parsing.reject_unknown(body, ALLOWED)
    query_id = parsing.text(body, "QueryId", max_length=call_record_schema()["properties"]["query_id"]["maxLength"])
    q = _q(body)
    tags = _tags(body)
    if not (query_id or q or tags):
        raise BadRequest("send QueryId, q or Tags: at least one of them is required", "QueryId")
    if query_id and (q or tags):
        raise BadRequest("QueryId finds one record and is not combined with q or Tags: send QueryId alone "
                         "(optionally with QueryDate), or search with q/Tags", "QueryId")
    query_date = _query_date(body)
    if query_id:
        for name in ("PageSize", "Cursor"):
            if body.get(name) is not None:
                raise BadRequest(f"{name} is only used with q or Tags (a QueryId lookup returns one record): "
                                 f"remove {name}", name)
    page_size = parsing.integer(body, "PageSize", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    cursor = parsing.text(body, "Cursor", max_length=4096)
    return EventsRequest(query_id, q, tags, query_date, page_size or DEFAULT_PAGE_SIZE, cursor,
                         bool(parsing.optional(body, "Proof", bool)))


def _q(body: dict[str, Any]) -> str | None:
    max_length, _ = _q_limits()
    q = parsing.text(body, "q", max_length=max_length)
    if q is None:
        return None
    if not _q_pattern().match(q):
        raise BadRequest("q must be input parameters as key{value}, comma-separated, e.g. doc{12345678900} or "
                         "doc{12345678900},name{MARIA}", "q")
    if q.count("{") > MAX_TERMS:
        raise BadRequest(f"q has more than {MAX_TERMS} parameters: search with fewer", "q")
    return q


def _tags(body: dict[str, Any]) -> dict[str, str]:
    _, spec = _q_limits()
    tags = parsing.string_map(body, "Tags", max_items=min(spec["maxProperties"], MAX_TERMS),
                              max_key=spec["propertyNames"]["maxLength"],
                              max_value=spec["additionalProperties"]["maxLength"])
    return tags


def _query_date(body: dict[str, Any]) -> datetime | None:
    """QueryDate read with DateFormat (both at most `MAX_DATE_TEXT` characters: a pattern is parsed
    character by character, so its length is CPU), within the years a record can have."""
    raw = parsing.text(body, "QueryDate", max_length=MAX_DATE_TEXT)
    fmt = parsing.text(body, "DateFormat", max_length=MAX_DATE_TEXT)
    if raw is None:
        if fmt is not None:
            raise BadRequest("DateFormat is only used with QueryDate: send QueryDate too, or remove DateFormat",
                             "DateFormat")
        return None
    moment = dotnet_dates.parse(raw, fmt or DEFAULT_FORMAT)
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise BadRequest(f"QueryDate is in the year {moment.year}: send a date from {YEARS[0]} to {YEARS[1]} "
                         "(or leave QueryDate out)", "QueryDate")
    return moment
