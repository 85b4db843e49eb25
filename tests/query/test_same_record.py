"""The same record reads the same in every answer: the Events API (QueryId lookup, q page, Tags
page), the report's JSON page, its CSV and its print view — field by field, for records with and
without the contract's optional fields, published to Kafka and written by a real `trilha ingest`.

A Hypothesis property: whatever optional fields a record has, the Events API answers it as the
contract says (an absent string is "", an absent status or IP is null), the report page answers the
same values for its fields, and the CSV and print view show those values as text.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.calls.keyset import instant, millis
from query.calls.records import fields as contract_fields
from query.calls.records import to_record
from query.reports.fields import fields as report_fields
from query.reports.sql import PAGE_FIELDS
from tests.ingest.support import produce
from tests.query import report_support as rs
from tests.query.support import QueryService, bearer, create_token, query_service, unique_company
from tests.stack import Stack

TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=10)
IP = st.one_of(st.ip_addresses(v=4), st.ip_addresses(network="2001:db8::/32")).map(str)
OPTIONAL = {name: TEXT for name in ("client_id", "client_name", "client_username", "authorization_id",
                                    "authorization_name", "user_id", "server", "method", "url", "resource", "event",
                                    "error_message")}
DRAFT = st.fixed_dictionaries(
    {"duration_ms": st.integers(0, 10**7).map(lambda n: n / 1000)},
    optional={**OPTIONAL, "ip": IP, "status": st.integers(100, 599), "error": st.booleans(),
              "tags": st.dictionaries(st.text("abc", min_size=1, max_size=3), TEXT, max_size=2),
              "request": st.dictionaries(st.text("ab", max_size=2), st.integers(-5, 5), max_size=2),
              "result": st.one_of(st.text("xyz", max_size=5), st.lists(st.booleans(), max_size=2))})
BASE_DAY = datetime(2021, 3, 1, tzinfo=UTC)
DAYS = itertools.count()


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """A company, its token, a running `trilha ingest` on a topic of its own and a query service."""
    config = replace(stack.with_topic("same-record"), batch_max_age_s=0.2)
    company = unique_company("same")
    headers = bearer(await asyncio.to_thread(create_token, stack, company))
    stack.spawn("ingest-same-record", "ingest", settings=config)
    try:
        async with query_service(stack, "query-same-record") as service:
            yield {"config": config, "company": company, "headers": headers, "service": service}
    finally:
        stack.stop("ingest-same-record")


def contract_view(record: dict[str, Any]) -> dict[str, Any]:
    """What the contract says a published record reads as: absent strings "", absent status, IP and
    gateway numbering null."""
    out: dict[str, Any] = {}
    for name in contract_fields():
        value = record.get(name)
        if name == "timestamp":
            out[name] = instant(millis(datetime.fromisoformat(value)))
        elif name == "ip":
            out[name] = None if value is None else str(ipaddress.ip_address(value))
        elif name == "error":
            out[name] = value if value is not None else (record.get("status") or 0) >= 400
        elif name in ("status", "request", "result", "gateway_id", "gateway_seq"):
            out[name] = value
        elif name == "tags":
            out[name] = value or {}
        else:
            out[name] = "" if value is None else value
    return out


def cells(record: dict[str, Any], guard_formulas: bool) -> list[str]:
    """The report's columns of an Events API record as the CSV (formula guard) and print view show them."""
    out = []
    for field in report_fields():
        value = record[field.sources[0]]
        if field.kind == "client":
            name, user = record["client_name"], record["client_username"]
            value = f"{name} ({user})" if name and user else name + user
        elif field.kind in ("ip", "status"):
            value = "" if value is None else str(value)
        elif field.kind == "bool":
            value = "Yes" if value else "No"
        elif field.kind == "duration":
            value = repr(float(value)).removesuffix(".0")
        elif field.kind == "datetime":
            value = datetime.fromisoformat(value).strftime("%d/%m/%Y %H:%M")
        if guard_formulas and field.kind in ("text", "client") and value[:1] in ("=", "+", "-", "@"):
            value = "'" + value
        out.append(value)
    return out


async def _events(service: QueryService, body: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await service.post("/events", body, headers=headers)
    assert answer.status == 200, answer.body
    return answer.body["Result"]


async def _ingested(service: QueryService, body: dict[str, Any], headers: dict[str, str], count: int
                    ) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while len(found := await _events(service, body, headers)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return found


async def _report(service: QueryService, path: str, params: dict[str, str], headers: dict[str, str]) -> str:
    async with service.session.get(f"{service.base}{path}", params=params, headers=headers) as answer:
        text = await answer.text()
        assert answer.status == 200, text
        return text


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(drafts=st.lists(DRAFT, min_size=1, max_size=4))
async def test_the_same_record_reads_the_same_in_every_answer(world: dict[str, Any], drafts: list[dict]) -> None:
    service, headers, run = world["service"], world["headers"], uuid.uuid4().hex[:12]
    day = BASE_DAY + timedelta(days=next(DAYS))
    published = [{**draft, "schema_version": 1, "query_id": f"same-{run}-{n}", "company_id": world["company"],
                  "timestamp": (day + timedelta(seconds=n, milliseconds=7 * n)).isoformat(timespec="milliseconds"),
                  "q": f"run{{{run}}}", "tags": {**draft.get("tags", {}), "run": run}}
                 for n, draft in enumerate(drafts)]
    await produce(world["config"], [orjson.dumps(r) for r in published])
    by_tags = await _ingested(service, {"Tags": {"run": run}, "PageSize": 100}, headers, len(published))
    by_q = await _events(service, {"q": f"run{{{run}}}", "PageSize": 100}, headers)
    by_id = [(await _events(service, {"QueryId": r["query_id"]}, headers))[0] for r in reversed(published)]
    window = {"from": day.isoformat(), "until": (day + timedelta(days=1)).isoformat(), "tz": "UTC", "lang": "en"}
    page = orjson.loads(await _report(service, "/reports/api-logs", {**window, "page_size": "100"}, headers))
    table = list(csv.reader(io.StringIO((await _report(service, "/reports/api-logs.csv", window, headers))
                                        .removeprefix("\ufeff"), newline=""), delimiter=";"))[1:]
    printed = rs.HtmlTable()
    printed.feed(await _report(service, "/reports/api-logs/print", window, headers))
    expected = [contract_view(r) for r in reversed(published)]  # newest first, as every answer lists them
    assert [r["query_id"] for r in by_tags] == [r["query_id"] for r in by_q] == [r["query_id"] for r in expected]
    for n, want in enumerate(expected):
        record = by_id[n]
        assert {name: record[name] for name in want} == want, "the QueryId lookup answers the contract's view"
        assert by_q[n] == by_tags[n] == record, "a q page and a Tags page answer what the lookup answers"
        assert page["rows"][n] == {name: record[name] for name in PAGE_FIELDS}, "the report page, field by field"
        assert table[n] == cells(record, guard_formulas=True), "the CSV shows the same values"
        assert printed.rows[n + 1] == cells(record, guard_formulas=False), "the print view shows the same values"
    assert len(page["rows"]) == len(table) == len(printed.rows) - 1 == len(expected)


def test_a_stored_status_of_zero_reads_as_null_like_an_absent_ip() -> None:
    """The contract's status is an HTTP code (100–599): the column's 0 is "none given", so null."""
    row = {"timestamp_ms": 0, "ip_text": "", "status": 0, "query_id": "q"}
    assert to_record(row, ("query_id", "status", "ip", "timestamp")) == {
        "query_id": "q", "status": None, "ip": None, "timestamp": "1970-01-01T00:00:00.000Z"}
    assert to_record({**row, "status": 404}, ("status",)) == {"status": 404}
