"""The API logs report's filters and paging, checked against the records the test wrote.

Each filter's expected rows are computed here in plain Python from the records themselves; the
report must return exactly those, newest first, each once (duplicates not yet merged included),
and nothing of another company.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.reports.filters import FILTER_NAMES, VIEW_NAMES
from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.stack import Stack

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=7, seconds=13, milliseconds=7)
SP = ZoneInfo("America/Sao_Paulo")
IPS = ("10.1.0.0", "10.1.2.3", "10.1.255.255", "10.2.0.0", "9.255.255.255", "192.168.7.20",
       "2001:db8:1::5", "2001:db8:1:ffff::1", "2001:db8:2::1", "2001:db9::1")

NAME = "query-report-filters"  # the `trilha query` process these tests use (its log: <data_dir>/NAME.log)



@pytest.fixture(scope="module")
async def data(stack: Stack, ch: AsyncClient) -> AsyncIterator[rs.Data]:
    mine, other = rs.company("rep-filters"), rs.company("rep-filters-other")
    factory = RecordFactory(seed=51, companies=1)
    rng = random.Random(51)
    records = factory.records(300, start=START, step=STEP, company=mine)
    for record in records:
        record["ip"] = rng.choice(IPS)
    records[7]["client_name"] = "João Conceição"
    records[7]["client_username"] = "joao.c"
    records[8].pop("ip")
    foreign = RecordFactory(seed=52, companies=1).records(60, start=START, step=STEP * 5, company=other,
                                                          client_id=records[0]["client_id"], ip="10.1.2.3")
    await rs.insert(ch, records + foreign)
    await rs.insert(ch, records[:25])  # a different block: stored again until merges collapse it
    async with rs.serving(stack, NAME, mine, records, other_company=other) as served:
        yield served


def _first(data: rs.Data, key: str, predicate: Callable[[rs.Record], bool] = lambda r: True) -> str:
    return next(r[key] for r in data.records if r.get(key) and predicate(r))


CASES: list[tuple[str, Callable[[rs.Data], dict[str, str]], Callable[[rs.Data], Callable[[rs.Record], bool]]]] = [
    ("client_id", lambda d: {"client_id": _first(d, "client_id")},
     lambda d: lambda r: r["client_id"] == _first(d, "client_id")),
    ("client by name without accents", lambda d: {"client": "joao conc"},
     lambda d: lambda r: "joao conc" in rs.fold(f"{r['client_name']} {r['client_username']}")),
    ("client by username, any case", lambda d: {"client": _first(d, "client_username").upper()[:6]},
     lambda d: lambda r: rs.fold(_first(d, "client_username")[:6])
     in rs.fold(f"{r['client_name']} {r['client_username']}")),
    ("authorization_id", lambda d: {"authorization_id": _first(d, "authorization_id")},
     lambda d: lambda r: r["authorization_id"] == _first(d, "authorization_id")),
    ("authorization by name", lambda d: {"authorization": "INTEGRACAO crm"},
     lambda d: lambda r: "integracao crm" in rs.fold(r["authorization_name"])),
    ("ip exact IPv4", lambda d: {"ip": "10.1.2.3"}, lambda d: lambda r: r.get("ip") == "10.1.2.3"),
    ("ip IPv4 CIDR", lambda d: {"ip": "10.1.0.0/16"}, lambda d: rs.in_network("10.1.0.0/16")),
    ("ip exact IPv6", lambda d: {"ip": "2001:db8:1::5"},
     lambda d: lambda r: r.get("ip") == "2001:db8:1::5"),
    ("ip IPv6 CIDR", lambda d: {"ip": "2001:db8:1::/48"}, lambda d: rs.in_network("2001:db8:1::/48")),
    ("resource", lambda d: {"resource": "empresas"}, lambda d: lambda r: r["resource"] == "empresas"),
    ("status exact", lambda d: {"status": "404"}, lambda d: lambda r: r["status"] == 404),
    ("status class", lambda d: {"status": "4xx"}, lambda d: lambda r: 400 <= r["status"] <= 499),
    ("error sim", lambda d: {"error": "sim"}, lambda d: lambda r: r["error"] is True),
    ("error não", lambda d: {"error": "Não"}, lambda d: lambda r: r["error"] is False),
    ("error true", lambda d: {"error": "true"}, lambda d: lambda r: r["error"] is True),
    ("from/until ISO with offset",
     lambda d: {"from": "2026-03-10T20:00:00-03:00", "until": "2026-03-11T02:30:00Z"},
     lambda d: lambda r: datetime(2026, 3, 10, 23, tzinfo=UTC) <= rs.when(r) < datetime(2026, 3, 11, 2, 30, 1,
                                                                                      tzinfo=UTC)),
    ("from/until DD/MM/AAAA HH:MM in the request's tz",
     lambda d: {"from": "10/03/2026 15:00", "until": "11/03/2026 01:15"},
     lambda d: lambda r: datetime(2026, 3, 10, 15, tzinfo=SP) <= rs.when(r) < datetime(2026, 3, 11, 1, 16, tzinfo=SP)),
    ("from/until DD/MM/AAAA HH:MM with tz=UTC",
     lambda d: {"from": "10/03/2026 15:00", "until": "11/03/2026 01:15", "tz": "UTC"},
     lambda d: lambda r: datetime(2026, 3, 10, 15, tzinfo=UTC) <= rs.when(r) < datetime(2026, 3, 11, 1, 16,
                                                                                       tzinfo=UTC)),
    ("three filters", lambda d: {"status": "2xx", "resource": "pessoas", "ip": "10.0.0.0/8"},
     lambda d: lambda r: 200 <= r["status"] <= 299 and r["resource"] == "pessoas" and rs.in_network("10.0.0.0/8")(r)),
    ("no filter: the company's records, each once", lambda d: {}, lambda d: lambda r: True),
]


@pytest.mark.parametrize("params, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_filter_returns_exactly_the_matching_records(data: rs.Data, params: Callable[[rs.Data], dict[str, str]],
                                                           expected: Callable[[rs.Data], Callable]) -> None:
    query = {**params(data), "page_size": "40"}
    want = rs.newest_first([r for r in data.records if expected(data)(r)])
    assert want, "the case must match some records to mean anything"
    rows, pages = await rs.all_pages(data.session, data.base, data.headers, query)
    assert [r["query_id"] for r in rows] == want
    assert pages == max(1, -(-len(want) // 40))


async def test_default_page_is_30_rows_of_contract_fields_newest_first(data: rs.Data) -> None:
    async with data.session.get(f"{data.base}/reports/api-logs", headers=data.headers) as answer:
        assert answer.status == 200
        body = await answer.json()
    assert len(body["rows"]) == 30 and body["next_cursor"]
    newest = max(data.records, key=lambda r: (rs.when(r), r["query_id"]))
    row = body["rows"][0]
    assert list(row) == ["query_id", "client_id", "client_name", "client_username", "authorization_id",
                         "authorization_name", "ip", "resource", "event", "method", "status", "url", "server",
                         "error", "duration_ms", "timestamp"]
    assert row["query_id"] == newest["query_id"]
    assert datetime.fromisoformat(row["timestamp"]) == rs.when(newest)
    assert row["ip"] == newest["ip"] and not row["ip"].startswith("::ffff:")
    assert (row["status"], row["error"], row["duration_ms"]) == (newest["status"], newest["error"],
                                                                 newest["duration_ms"])
    without_ip = next(r for r in data.records if "ip" not in r)
    rows, _ = await rs.all_pages(data.session, data.base, data.headers,
                                 {"client_id": without_ip["client_id"], "page_size": "1000"})
    assert next(r for r in rows if r["query_id"] == without_ip["query_id"])["ip"] is None


async def test_another_company_sees_none_of_these_records(data: rs.Data) -> None:
    rows, _ = await rs.all_pages(data.session, data.base, data.other_headers,
                                 {"client_id": data.records[0]["client_id"], "page_size": "1000"})
    assert len(rows) == 60
    assert not {r["query_id"] for r in rows} & {r["query_id"] for r in data.records}


async def test_a_cursor_only_continues_its_own_search(data: rs.Data) -> None:
    url = f"{data.base}/reports/api-logs"
    async with data.session.get(url, params={"status": "2xx"}, headers=data.headers) as answer:
        cursor = (await answer.json())["next_cursor"]
    for params, headers in (({"status": "4xx", "cursor": cursor}, data.headers),
                            ({"status": "2xx", "cursor": cursor}, data.other_headers),
                            ({"status": "2xx", "cursor": cursor[:-2] + "xy"}, data.headers)):
        async with data.session.get(url, params=params, headers=headers) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"]["parameter"] == "cursor"


BAD = [
    ({"ip": "300.1.2.3"}, "ip"), ({"ip": "10.0.0.0/33"}, "ip"), ({"ip": "2001:db8::/129"}, "ip"),
    ({"status": "999"}, "status"), ({"status": "6xx"}, "status"), ({"status": "abc"}, "status"),
    ({"error": "talvez"}, "error"), ({"from": "31/02/2026 10:00"}, "from"), ({"until": "ontem"}, "until"),
    ({"from": "2026-03-11T00:00:00Z", "until": "2026-03-10T00:00:00Z"}, "until"),
    ({"tz": "America/Atlantis"}, "tz"), ({"lang": "fr"}, "lang"), ({"page_size": "0"}, "page_size"),
    ({"page_size": "1001"}, "page_size"), ({"Status": "200"}, "Status"), ({"company_id": "x"}, "company_id"),
]


@pytest.mark.parametrize("params, parameter", BAD, ids=[f"{list(p)[-1]}={list(p.values())[-1]}" for p, _ in BAD])
async def test_bad_input_is_a_400_naming_the_parameter(data: rs.Data, params: dict[str, str], parameter: str) -> None:
    for path in ("/reports/api-logs", "/reports/api-logs.csv", "/reports/api-logs/print",
                 "/reports/api-logs/stats"):
        if parameter == "page_size" and path != "/reports/api-logs":
            continue
        async with data.session.get(f"{data.base}{path}", params=params, headers=data.headers) as answer:
            assert answer.status == 400, (path, await answer.text())
            error = (await answer.json())["error"]
            assert error["parameter"] == parameter, (path, error)
            assert parameter.lower() in error["message"].lower()


async def test_a_request_without_a_valid_token_is_refused(data: rs.Data) -> None:
    for headers in ({}, {"Authorization": "Bearer trl_0000000000000000_" + "a" * 43}):
        async with data.session.get(f"{data.base}/reports/api-logs", headers=headers) as answer:
            assert answer.status == 401


async def test_the_openapi_document_describes_the_report_and_its_parameters(data: rs.Data) -> None:
    async with data.session.get(f"{data.base}/openapi.yaml") as answer:
        assert answer.status == 200
        document = await answer.text()
    for path in ("/reports/api-logs:", "/reports/api-logs.csv:", "/reports/api-logs/print:",
                 "/reports/api-logs/stats:", "/reports/schedules:", "/reports/schedules/{id}:"):
        assert f"\n  {path}\n" in document, path
    for name in (*FILTER_NAMES, *VIEW_NAMES, "page_size", "cursor", "sep", "bom", "bucket"):
        assert f"name: {name}," in document or f"name: {name}\n" in document, name


async def test_small_pages_through_unmerged_copies_show_each_record_once(data: rs.Data) -> None:
    until = rs.when(data.records[40]).isoformat()
    want = rs.newest_first([r for r in data.records if rs.when(r) <= rs.when(data.records[40])])
    for size in ("1", "3", "7"):
        rows, pages = await rs.all_pages(data.session, data.base, data.headers, {"until": until, "page_size": size})
        assert [r["query_id"] for r in rows] == want
        assert pages == -(-len(want) // int(size))
