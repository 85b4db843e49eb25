"""Events API by QueryId: the whole record comes back, with or without an (approximate) QueryDate,
and another company's QueryId is indistinguishable from one that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import call_record_schema
from services.stack.records import RecordFactory
from tests.query.support import QueryService, bearer, create_token, query_service, raw_insert, unique_company
from tests.stack import Stack

DAY0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-lookup") as running:
        yield running


@pytest.fixture(scope="module")
async def world(stack: Stack, ch) -> dict[str, Any]:  # noqa: ANN001
    """Two companies; company A has a record a day for 30 days, and records with unusual results."""
    factory = RecordFactory(seed=41)
    a, b = unique_company("a"), unique_company("b")
    daily = [factory.record(DAY0 + timedelta(days=n, minutes=n), company=a) for n in range(30)]
    odd = [factory.record(DAY0 - timedelta(days=400), company=a, result="texto livre, não JSON"),
           factory.record(DAY0 - timedelta(days=401), company=a, result=[1, 2, {"x": None}], ip="2001:db8::7"),
           factory.record(DAY0 - timedelta(days=402), company=a, result=None, request=None, tags={})]
    del odd[2]["result"], odd[2]["request"], odd[2]["ip"]
    other = [factory.record(DAY0, company=b) for _ in range(3)]
    await raw_insert(ch, daily + odd + other)
    await raw_insert(ch, [daily[5], other[0]])  # a duplicate not merged yet must not show twice
    return {"a": a, "b": b, "daily": daily, "odd": odd, "other": other,
            "token_a": bearer(create_token(stack, a)), "token_b": bearer(create_token(stack, b))}


def _expected(record: dict[str, Any]) -> dict[str, Any]:
    moment = datetime.fromisoformat(record["timestamp"]).astimezone(UTC)
    return {**record, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"}


async def test_the_record_carries_every_contract_field(service: QueryService, world: dict[str, Any]) -> None:
    record = world["daily"][5]
    answer = await service.post("/events", {"QueryId": record["query_id"]}, headers=world["token_a"])
    assert answer.status == 200
    assert answer.body["Status"] == {"code": 200, "message": "OK"} and answer.body["Cursor"] is None
    [found] = answer.body["Result"]
    assert list(found) == list(call_record_schema()["properties"])
    expected = _expected(record)
    for field in found:
        if field in expected:
            assert found[field] == expected[field], field
    assert found["user_id"] == "" and found["error_message"] == record.get("error_message", "")


async def test_results_that_are_not_objects_come_back_as_they_were(service: QueryService,
                                                                  world: dict[str, Any]) -> None:
    text, array, absent = world["odd"]
    found = [(await service.post("/log", {"QueryId": r["query_id"]}, headers=world["token_a"])).body["Result"][0]
             for r in (text, array, absent)]
    assert found[0]["result"] == "texto livre, não JSON"
    assert found[1]["result"] == [1, 2, {"x": None}] and found[1]["ip"] == "2001:db8::7"
    assert found[2]["result"] is None and found[2]["request"] is None and found[2]["ip"] is None
    assert found[2]["tags"] == {}


async def test_a_missing_id_and_another_companys_id_answer_the_same_404(service: QueryService,
                                                                        world: dict[str, Any]) -> None:
    missing = await service.post("/events", {"QueryId": "does-not-exist"}, headers=world["token_a"])
    foreign = await service.post("/events", {"QueryId": world["other"][0]["query_id"]}, headers=world["token_a"])
    assert missing.status == foreign.status == 404
    assert missing.body == foreign.body
    assert missing.body["Status"]["parameter"] == "QueryId" and missing.body["Result"] == []
    dated = await service.post("/events", {"QueryId": world["other"][0]["query_id"], "QueryDate": "2025-03-01"},
                               headers=world["token_a"])
    assert dated.status == 404 and dated.body == missing.body
    own = await service.post("/events", {"QueryId": world["other"][0]["query_id"]}, headers=world["token_b"])
    assert own.status == 200 and own.body["Result"][0]["company_id"] == world["b"]


@pytest.mark.parametrize("offset_days", [0, 1, -1, 2, -2, 3, -3, 45, -365 * 3])
async def test_query_date_may_be_approximate_or_wrong(service: QueryService, world: dict[str, Any],
                                                      offset_days: int) -> None:
    record = world["daily"][10]
    date = (datetime.fromisoformat(record["timestamp"]) + timedelta(days=offset_days)).strftime("%Y-%m-%d")
    answer = await service.post("/events", {"QueryId": record["query_id"], "QueryDate": date},
                                headers=world["token_a"])
    assert answer.status == 200, answer.body
    assert [r["query_id"] for r in answer.body["Result"]] == [record["query_id"]]


@pytest.mark.parametrize("date, pattern", [
    ("11/03/2025", "dd/MM/yyyy"),
    ("03/11/2025", "MM/dd/yyyy"),
    ("2025-03-11T12:10:00", "yyyy-MM-ddTHH:mm:ss"),
    ("2025-03-11T09:10:00-03:00", "yyyy-MM-ddTHH:mm:sszzz"),
    ("11.3.25", "d.M.yy"),
])
async def test_query_date_in_dotnet_formats(service: QueryService, world: dict[str, Any], date: str,
                                            pattern: str) -> None:
    record = world["daily"][10]
    answer = await service.post("/log", {"QueryId": record["query_id"], "QueryDate": date, "DateFormat": pattern},
                                headers=world["token_a"])
    assert answer.status == 200, answer.body
    assert answer.body["Result"][0]["query_id"] == record["query_id"]


async def test_a_duplicate_not_yet_merged_is_returned_once(service: QueryService, world: dict[str, Any]) -> None:
    record = world["daily"][5]
    for body in ({"QueryId": record["query_id"]},
                 {"QueryId": record["query_id"], "QueryDate": record["timestamp"][:10]}):
        answer = await service.post("/events", body, headers=world["token_a"])
        assert len(answer.body["Result"]) == 1
