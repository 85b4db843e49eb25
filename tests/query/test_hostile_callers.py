"""A hostile or careless caller against a real `trilha query` (issue 10, defects 5 and 6): each
odd input is a 4xx that says what to fix, each fair-use limit a 429 with `Retry-After`, a caller
who hangs up is no 5xx, and health is honest."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
import pytest
import yaml
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

import schemas
from query.app import create_app
from query.state import CH
from services.stack.records import RecordFactory
from tests.query.support import QueryService, bearer, create_token, query_service, raw_insert, unique_company
from tests.stack import Stack

# The application keeps its state under typed keys (query/state.py): a plain string key is an error here.
pytestmark = pytest.mark.filterwarnings("error::aiohttp.web.NotAppKeyWarning")


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-hostile") as running:
        yield running


@pytest.fixture(scope="module")
async def headers(stack: Stack, ch) -> dict[str, str]:  # noqa: ANN001
    company = unique_company("hostile")
    await raw_insert(ch, RecordFactory(seed=21).records(40, company=company))
    return bearer(await asyncio.to_thread(create_token, stack, company))


def _random_token() -> str:
    return f"trl_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


async def _raw_http(port: int, request: bytes, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 30) if read else b""
    writer.close()
    return data


def _port(service: QueryService) -> int:
    return int(service.base.rsplit(":", 1)[1])


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31"])
@pytest.mark.parametrize("search", [{"QueryId": "x"}, {"q": "doc{1}"}])
async def test_a_query_date_at_the_calendar_s_ends_is_a_400(service: QueryService, headers: dict[str, str],
                                                           date: str, search: dict[str, str]) -> None:
    answer = await service.post("/events", {**search, "QueryDate": date}, headers=headers)
    assert answer.status == 400, answer.body
    assert answer.body["Status"]["parameter"] == "QueryDate" and "1970" in answer.body["Status"]["message"]


async def test_a_token_of_undecodable_bytes_is_a_401_without_a_traceback(service: QueryService) -> None:
    answer = await _raw_http(_port(service), b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
                                             b"Content-Type: application/json\r\nContent-Length: 15\r\n"
                                             b"Connection: close\r\n\r\n{\"QueryId\":\"x\"}")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"malformed" in answer
    assert "unhandled error" not in service.log() and "Traceback" not in service.log()


async def test_a_time_zone_clickhouse_does_not_know_is_a_400(service: QueryService, headers: dict[str, str]) -> None:
    for path in ("/reports/api-logs.csv", "/reports/api-logs/stats", "/reports/api-logs"):
        answer = await service.get(f"{path}?tz=right/UTC", headers=headers)
        assert answer.status == 400, (path, answer.body)
        assert answer.body["error"]["parameter"] == "tz"


async def test_every_time_zone_accepted_is_one_clickhouse_knows(ch) -> None:  # noqa: ANN001
    from query.reports.filters import _zone_names

    known = {row[0] for row in (await ch.query("SELECT time_zone FROM system.time_zones")).result_rows}
    assert _zone_names() <= known, sorted(_zone_names() - known)[:10]


async def test_a_megabyte_date_format_is_refused_at_once_and_not_echoed(service: QueryService,
                                                                      headers: dict[str, str]) -> None:
    started = time.monotonic()
    answer = await service.post("/events", {"QueryId": "x", "QueryDate": "2026-01-01", "DateFormat": "y" * 1_000_000},
                                headers=headers)
    assert answer.status == 400 and answer.body["Status"]["parameter"] == "DateFormat"
    assert time.monotonic() - started < 2.0
    assert len(orjson.dumps(answer.body)) < 1000


@pytest.mark.parametrize("body", [
    {"QueryId": "x" * 1_000_000}, {"q": "a{" + "x" * 1_000_000 + "}"}, {"Tags": {"k" * 1_000_000: "v"}},
    {"Tags": {"k": "v" * 1_000_000}}, {"QueryId": "x", "QueryDate": "1" * 1_000_000},
    {"q": "a{b}", "Cursor": "c" * 900_000}, {"n" * 900_000: 1},
])
async def test_no_huge_value_is_echoed_back(service: QueryService, headers: dict[str, str], body: dict) -> None:
    answer = await service.post("/events", body, headers=headers)
    assert answer.status == 400, str(answer.body)[:300]
    assert len(orjson.dumps(answer.body)) < 1000


async def test_report_parameters_are_capped_and_not_echoed(service: QueryService, headers: dict[str, str]) -> None:
    for name in ("ip", "status", "error", "from", "until", "tz", "lang", "sep", "bom", "cursor", "page_size"):
        answer = await service.get(f"/reports/api-logs.csv?{name}={'9' * 6000}", headers=headers)
        assert answer.status == 400, (name, str(answer.body)[:200])
        assert len(orjson.dumps(answer.body)) < 1000, name


async def test_a_caller_hanging_up_mid_body_or_mid_export_is_no_5xx(service: QueryService,
                                                                   headers: dict[str, str]) -> None:
    auth = headers["Authorization"].encode()
    await _raw_http(_port(service), b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
                    b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"QueryId\":", read=False)
    for _ in range(3):
        await _raw_http(_port(service), b"GET /reports/api-logs.csv HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
                        b"\r\n\r\n", read=False)
    await asyncio.sleep(1.5)
    scraped = (await service.get("/metrics")).body
    assert 'status="5' not in scraped, [line for line in scraped.splitlines() if 'status="5' in line]
    assert 'status="client_disconnected"' in scraped
    assert "unhandled error" not in service.log()


async def _token_lookups(service: QueryService) -> float:
    scraped = (await service.get("/metrics")).body
    return sum(float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
               if line.startswith("trilha_query_token_lookups_total"))


async def test_random_tokens_cost_no_lookup_each_and_then_429(stack: Stack) -> None:
    async with query_service(stack, "query-guesses") as service:
        await _guesses(service)


async def _guesses(service: QueryService) -> None:
    before = await _token_lookups(service)
    answers = await asyncio.gather(*(service.post("/events", {"QueryId": "x"}, headers=bearer(_random_token()))
                                     for _ in range(300)))
    statuses = [a.status for a in answers]
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 200, statuses
    limited = next(a for a in answers if a.status == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.body["Status"]["code"] == 429 and limited.body["Result"] == []
    lookups = await _token_lookups(service) - before
    assert 0 < lookups <= 20, lookups


async def test_a_valid_token_still_works_from_an_address_that_failed_a_lot(stack: Stack, service: QueryService,
                                                                           headers: dict[str, str]) -> None:
    await service.post("/events", {"QueryId": "x"}, headers=headers)  # known good before the guessing
    for _ in range(40):
        await service.post("/events", {"QueryId": "x"}, headers=bearer(_random_token()))
    assert (await service.post("/events", {"QueryId": "x"}, headers=headers)).status == 404


async def test_a_new_token_works_at_once_even_right_after_unknown_ones(stack: Stack, ch) -> None:  # noqa: ANN001
    async with query_service(stack, "query-new-token", query_auth_failure_burst=100_000) as running:
        for _ in range(5):
            await running.post("/events", {"QueryId": "x"}, headers=bearer(_random_token()))
        token = await asyncio.to_thread(create_token, stack, unique_company())
        answer = await running.post("/events", {"QueryId": "x"}, headers=bearer(token))
        assert answer.status == 404, answer.body


async def test_a_token_beyond_its_rate_gets_429_with_retry_after(stack: Stack) -> None:
    token = bearer(await asyncio.to_thread(create_token, stack, unique_company()))
    async with query_service(stack, "query-rate", query_token_rate=1.0, query_token_burst=3) as running:
        statuses = [(await running.get("/reports/api-logs", headers=token)) for _ in range(5)]
        assert [a.status for a in statuses[:3]] == [200, 200, 200]
        limited = statuses[-1]
        assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "per second" in limited.body["error"]["message"]


async def test_concurrent_searches_and_exports_beyond_a_company_s_share_are_429(stack: Stack, ch) -> None:  # noqa: ANN001
    company = unique_company("share")
    await raw_insert(ch, RecordFactory(seed=22).records(300, company=company))
    token = bearer(await asyncio.to_thread(create_token, stack, company))
    tags = {"env": "prod", "origem": "batch", **{f"k{n}": f"v{n}" for n in range(30)}}
    async with query_service(stack, "query-share", query_searches_per_company=1, query_exports_per_company=1,
                             query_slot_wait_s=0.0) as running:
        searches = await asyncio.gather(*(running.post("/events", {"Tags": tags}, headers=token) for _ in range(12)))
        exports = await asyncio.gather(*(running.get("/reports/api-logs.csv", headers=token) for _ in range(12)))
    for answers in (searches, exports):
        statuses = sorted(a.status for a in answers)
        assert set(statuses) == {200, 429}, statuses
        assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status == 429)


async def test_health_does_not_queue_behind_heavy_queries(stack: Stack) -> None:
    app = create_app(replace(stack.settings, cursor_secret="x"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        class Stuck:  # every query of the service's own client hangs, as under a heavy load
            def __getattr__(self, name: str) -> object:
                async def hang(*_: object, **__: object) -> None:
                    await asyncio.sleep(3600)
                return hang

        real, app._state[CH] = app[CH], Stuck()  # noqa: SLF001
        try:
            async with ClientSession() as http:
                for path in ("/healthz", "/readyz", "/livez"):
                    async with http.get(server.make_url(path)) as answer:
                        assert answer.status == 200, (path, await answer.text())
        finally:
            app._state[CH] = real  # noqa: SLF001
    finally:
        await server.close()


async def test_the_served_document_is_whole_and_the_contract_is_served(service: QueryService) -> None:
    document = yaml.safe_load((await service.get("/openapi.yaml")).body)

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    assert all(ref.startswith("#/") for ref in refs(document)), [r for r in refs(document) if not r.startswith("#")]
    contract = (await service.get("/call_record.v1.json")).body
    assert contract == orjson.loads(schemas.read_text("call_record.v1.json"))
    inlined = document["components"]["schemas"]["CallRecord"]
    assert inlined["properties"] == contract["properties"]


def test_the_document_ends_inside_components_schemas() -> None:
    """The served copy appends the contract there (see query.openapi_doc)."""
    document = yaml.safe_load(schemas.read_text("openapi.yaml"))
    assert list(document)[-1] == "components" and list(document["components"])[-1] == "schemas"



async def test_a_search_past_its_time_budget_is_a_503_saying_narrow_it(stack: Stack, headers: dict[str, str]) -> None:
    async with query_service(stack, "query-budget", query_search_budget_s=0.0) as running:
        answer = await running.post("/events", {"Tags": {"env": "prod"}}, headers=headers)
    assert answer.status == 503 and "narrow it" in answer.body["Status"]["message"]
    assert answer.headers["Retry-After"] == "5"
