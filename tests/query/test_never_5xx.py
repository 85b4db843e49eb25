"""Property: whatever a caller sends — any value in any parameter of any endpoint, any header
bytes — a running `trilha query` (real ClickHouse behind it) never answers 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.events.params import ALLOWED
from query.reports.http import CSV_PARAMS, PAGE_PARAMS, STATS_PARAMS
from tests.query.support import QueryService, bearer, create_token, query_service, unique_company
from tests.stack import Stack

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
SPECIALS = ["0001-01-01", "9999-12-31", "31/12/9999", "right/UTC", "posix/UTC", "localtime", "doc{1}", "a{}", "4xx",
            "10.0.0.0/8", "::ffff:1.2.3.4%eth0", "sim", "\x00", "yyyy-MM-dd", "dd/MM/yyyy", "K", "zzz", "1", "0"]
texts = st.one_of(st.sampled_from(SPECIALS), st.text(),
                  st.text(st.characters(codec="utf-8", min_codepoint=0, max_codepoint=0x1F)),
                  st.text(min_size=5000, max_size=20000))
json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | texts,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)
PICKED = {"QueryDate": ["0001-01-01", "9999-12-31", "31/12/9999", "2026-01-01"],
          "DateFormat": ["yyyy-MM-dd", "dd/MM/yyyy", "K", "yyyy-MM-ddTHH:mm:sszzz"],
          "tz": ["right/UTC", "posix/UTC", "localtime", "UTC"], "from": ["0001-01-01", "31/12/9999 23:59"],
          "until": ["9999-12-31", "01/01/0001"], "ip": ["::ffff:1.2.3.4%eth0", "10.0.0.0/8", "fe80::1%1"],
          "status": ["4xx", "599", "٥٠٠"], "error": ["0", "Não", "SIM"], "cursor": ["x", "a.b"]}


def value_of(name: str, anything: st.SearchStrategy) -> st.SearchStrategy:
    """Half the time a value picked to hit this parameter's edges, else anything."""
    return st.one_of(st.sampled_from(PICKED.get(name, SPECIALS)), anything)


def known_and_odd(allowed: tuple[str, ...], anything: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """Each known parameter present or not; half the time an unknown one or two besides."""
    known = st.fixed_dictionaries({}, optional={name: value_of(name, anything) for name in allowed})
    odd = st.one_of(st.just({}), st.dictionaries(st.text(max_size=12), anything, min_size=1, max_size=2))
    return st.tuples(known, odd).map(lambda pair: {**pair[1], **pair[0]})


searches = st.one_of(st.sampled_from([{"QueryId": "x"}, {"q": "doc{1}"}, {"Tags": {"env": "prod"}}]),
                     known_and_odd(ALLOWED[:3], json_values))
REPORT_PATHS = {"/reports/api-logs": PAGE_PARAMS, "/reports/api-logs.csv": CSV_PARAMS,
                "/reports/api-logs/print": PAGE_PARAMS[:-2], "/reports/api-logs/stats": STATS_PARAMS}


@pytest.fixture(scope="module")
async def fuzzed(stack: Stack) -> AsyncIterator[tuple[QueryService, dict[str, str]]]:
    async with query_service(stack, "query-fuzz", query_token_rate=100_000.0, query_token_burst=100_000,
                             query_auth_failure_burst=100_000) as running:
        yield running, bearer(await asyncio.to_thread(create_token, stack, unique_company("fuzz")))


def _no_5xx(status: int, what: object) -> None:
    assert status < 500, f"{status} for {str(what)[:500]}"


@EXAMPLES
@given(path=st.sampled_from(["/events", "/log"]), search=searches,
       body=known_and_odd(ALLOWED[3:], json_values))  # QueryDate, DateFormat, PageSize, Cursor on a search
async def test_events_bodies_never_5xx(fuzzed: tuple[QueryService, dict[str, str]], path: str, search: dict,
                                       body: dict) -> None:
    service, headers = fuzzed
    sent = {**search, **body}
    _no_5xx((await service.post(path, sent, headers=headers)).status, sent)


@EXAMPLES
@given(raw=st.one_of(st.binary(max_size=2000), json_values.map(orjson.dumps),
                     st.just(b'{"q": "\\ud800"}'), st.just(b"[" * 5000 + b"]" * 5000)))
async def test_raw_bodies_never_5xx(fuzzed: tuple[QueryService, dict[str, str]], raw: bytes) -> None:
    service, headers = fuzzed
    for path in ("/events", "/reports/schedules"):
        _no_5xx((await service.post(path, None, headers=headers, raw=raw)).status, raw)


@EXAMPLES
@given(path=st.sampled_from(sorted(REPORT_PATHS)), data=st.data())
async def test_report_parameters_never_5xx(fuzzed: tuple[QueryService, dict[str, str]], path: str,
                                           data: st.DataObject) -> None:
    service, headers = fuzzed
    params = data.draw(known_and_odd(REPORT_PATHS[path], st.text(max_size=300)))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items())
    _no_5xx((await service.get(f"{path}?{query}", headers=headers)).status, params)


@EXAMPLES
@given(body=st.dictionaries(st.sampled_from(["name", "filters", "recurrence", "range", "format", "lang", "csv",
                                             "destination", "x"]), json_values, max_size=6))
async def test_schedule_bodies_never_5xx(fuzzed: tuple[QueryService, dict[str, str]], body: dict) -> None:
    service, headers = fuzzed
    _no_5xx((await service.post("/reports/schedules", body, headers=headers)).status, body)


@EXAMPLES
@given(value=st.binary(min_size=0, max_size=200).filter(lambda b: b"\r" not in b and b"\n" not in b),
       name=st.sampled_from([b"Authorization", b"AccessToken", b"TokenId", b"Content-Type", b"X-Any"]))
async def test_header_bytes_never_5xx(fuzzed: tuple[QueryService, dict[str, str]], value: bytes, name: bytes) -> None:
    service, _ = fuzzed
    reader, writer = await asyncio.open_connection("127.0.0.1", int(service.base.rsplit(":", 1)[1]))
    writer.write(b"POST /events HTTP/1.1\r\nHost: x\r\n" + name + b": " + value +
                 b"\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"QueryId\":\"x\"}")
    head = await asyncio.wait_for(reader.read(12), 30)
    writer.close()
    assert not head.startswith(b"HTTP/1.1 5"), head
