"""Events API by input parameters (`q`) and tags: every matching record, newest first, each once,
through signed cursors bound to the search and the company."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.stack.records import RecordFactory, cpf
from tests.query.support import (
    QueryService,
    bearer,
    create_token,
    query_service,
    raw_insert,
    unique_company,
)
from tests.stack import Stack

START = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-search") as running:
        yield running


def _newest_first(records: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(records, key=lambda r: (datetime.fromisoformat(r["timestamp"]), r["query_id"]), reverse=True)
    return [r["query_id"] for r in ordered]


async def _walk(service: QueryService, body: dict[str, Any], headers: dict[str, str],
                between_pages: Any = None) -> tuple[list[str], int]:
    """Every page of a search; returns the query ids in order and how many pages it took."""
    ids: list[str] = []
    cursor = None
    for pages in itertools.count(1):
        answer = await service.post("/events", {**body, **({"Cursor": cursor} if cursor else {})}, headers=headers)
        assert answer.status == 200, answer.body
        ids += [r["query_id"] for r in answer.body["Result"]]
        cursor = answer.body["Cursor"]
        if cursor is None:
            return ids, pages
        if between_pages is not None:
            await between_pages(pages)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
async def world(stack: Stack, ch) -> dict[str, Any]:  # noqa: ANN001
    """Company A: 60 calls about one CPF (some also with a name), some with a tag, over 6 days; noise;
    company B: calls about the same CPF."""
    factory = RecordFactory(seed=77)
    a, b = unique_company("a"), unique_company("b")
    doc = cpf(factory.rng)
    about = []
    for n in range(60):
        q = f"doc{{{doc}}}" + (",name{MARIA}" if n % 3 == 0 else "")
        tags = {"lote": "L1" if n % 4 == 0 else "L2", "env": "prod"}
        about.append(factory.record(START + timedelta(hours=2 * n, milliseconds=n % 2), company=a, q=q, tags=tags))
    same_instant = [factory.record(START + timedelta(days=10), company=a, q=f"doc{{{doc}}}") for _ in range(3)]
    noise = [factory.record(START + timedelta(minutes=7 * n), company=a) for n in range(40)]
    foreign = [factory.record(START + timedelta(hours=n), company=b, q=f"doc{{{doc}}}", tags={"lote": "L1"})
               for n in range(10)]
    await raw_insert(ch, about + same_instant + noise + foreign)
    await raw_insert(ch, about[:5])  # duplicates not merged yet: never shown twice
    return {"doc": doc, "about": about + same_instant, "noise": noise, "foreign": foreign,
            "a": a, "b": b, "token_a": bearer(create_token(stack, a)), "token_b": bearer(create_token(stack, b))}


async def test_q_finds_every_call_about_a_document_newest_first(service: QueryService,
                                                                world: dict[str, Any]) -> None:
    answer = await service.post("/events", {"q": f"doc{{{world['doc']}}}", "PageSize": 1000},
                                headers=world["token_a"])
    assert answer.status == 200
    assert [r["query_id"] for r in answer.body["Result"]] == _newest_first(world["about"])
    assert answer.body["Cursor"] is None
    assert all(r["company_id"] == world["a"] for r in answer.body["Result"])


async def test_default_page_size_is_50(service: QueryService, world: dict[str, Any]) -> None:
    answer = await service.post("/events", {"q": f"doc{{{world['doc']}}}"}, headers=world["token_a"])
    assert len(answer.body["Result"]) == 50 and answer.body["Cursor"]


async def test_q_is_normalised_like_stored_records(service: QueryService, world: dict[str, Any]) -> None:
    answer = await service.post("/events", {"q": f" DOC{{ {world['doc']} }} ", "PageSize": 1000},
                                headers=world["token_a"])
    assert len(answer.body["Result"]) == len(world["about"])


async def test_several_parameters_in_q_must_all_match(service: QueryService, world: dict[str, Any]) -> None:
    body = {"q": f"name{{MARIA}}, doc{{{world['doc']}}}", "PageSize": 1000}
    answer = await service.post("/events", body, headers=world["token_a"])
    expected = [r for r in world["about"] if "name{MARIA}" in r["q"]]
    assert [r["query_id"] for r in answer.body["Result"]] == _newest_first(expected)


async def test_tags_must_all_match_and_combine_with_q(service: QueryService, world: dict[str, Any]) -> None:
    one = await service.post("/events", {"Tags": {"lote": "L1"}, "PageSize": 1000}, headers=world["token_a"])
    assert [r["query_id"] for r in one.body["Result"]] == _newest_first(
        [r for r in world["about"] if r["tags"].get("lote") == "L1"])
    both = await service.post("/events", {"Tags": {"lote": "L1", "env": "prod"}, "q": "name{MARIA}",
                                          "PageSize": 1000}, headers=world["token_a"])
    assert [r["query_id"] for r in both.body["Result"]] == _newest_first(
        [r for r in world["about"] if r["tags"].get("lote") == "L1" and "name{MARIA}" in r["q"]])
    none = await service.post("/events", {"Tags": {"lote": "L1", "env": "hml"}}, headers=world["token_a"])
    assert none.status == 200 and none.body["Result"] == [] and none.body["Cursor"] is None


async def test_query_date_filters_a_search_by_day(service: QueryService, world: dict[str, Any]) -> None:
    body = {"q": f"doc{{{world['doc']}}}", "QueryDate": "02/06/2025", "DateFormat": "dd/MM/yyyy", "PageSize": 1000}
    answer = await service.post("/events", body, headers=world["token_a"])
    expected = [r for r in world["about"] if r["timestamp"].startswith("2025-06-02")]
    assert expected and [r["query_id"] for r in answer.body["Result"]] == _newest_first(expected)


@pytest.mark.parametrize("body", [
    {"q": "doc{X}"},
    {"Tags": {"lote": "L1"}},
])
async def test_another_company_sees_nothing(service: QueryService, world: dict[str, Any], body: dict) -> None:
    body = {k: (v.replace("X", world["doc"]) if isinstance(v, str) else v) for k, v in body.items()}
    answer = await service.post("/events", {**body, "PageSize": 1000}, headers=world["token_b"])
    assert {r["query_id"] for r in answer.body["Result"]} == {r["query_id"] for r in world["foreign"]}


async def test_walking_pages_of_7_while_records_arrive(service: QueryService, world: dict[str, Any],
                                                       ch) -> None:  # noqa: ANN001
    """New calls about the document arrive between pages: the walk still returns every record that
    existed when it started exactly once, in order, and never one of another company."""
    factory = RecordFactory(seed=5)
    arrived: list[dict[str, Any]] = []

    async def arrive(page: int) -> None:
        now = datetime.now(UTC)
        fresh = [factory.record(now + timedelta(milliseconds=n), company=world["a"], q=f"doc{{{world['doc']}}}")
                 for n in range(3)]
        arrived.extend(fresh)
        await raw_insert(ch, fresh)

    before = _newest_first(world["about"])
    ids, pages = await _walk(service, {"q": f"doc{{{world['doc']}}}", "PageSize": 7}, world["token_a"], arrive)
    assert ids == before
    assert pages == -(-len(before) // 7)
    assert len(arrived) == 3 * (pages - 1)
    after = await service.post("/events", {"q": f"doc{{{world['doc']}}}", "PageSize": 1000},
                               headers=world["token_a"])
    assert {r["query_id"] for r in arrived} <= {r["query_id"] for r in after.body["Result"]}


async def test_walking_a_tags_search_returns_each_record_once(service: QueryService, world: dict[str, Any]) -> None:
    ids, _ = await _walk(service, {"Tags": {"lote": "L1", "env": "prod"}, "PageSize": 4}, world["token_a"])
    assert ids == _newest_first([r for r in world["about"] if r["tags"].get("lote") == "L1"])


async def test_page_size_may_change_between_pages(service: QueryService, world: dict[str, Any]) -> None:
    body = {"q": f"doc{{{world['doc']}}}", "PageSize": 5}
    first = await service.post("/events", body, headers=world["token_a"])
    second = await service.post("/events", {**body, "PageSize": 20, "Cursor": first.body["Cursor"]},
                                headers=world["token_a"])
    whole = await service.post("/events", {**body, "PageSize": 25}, headers=world["token_a"])
    ids = [r["query_id"] for r in first.body["Result"] + second.body["Result"]]
    assert ids == [r["query_id"] for r in whole.body["Result"]]


async def test_a_cursor_only_works_for_its_search_and_company(service: QueryService, world: dict[str, Any]) -> None:
    body = {"q": f"doc{{{world['doc']}}}", "PageSize": 5}
    cursor = (await service.post("/events", body, headers=world["token_a"])).body["Cursor"]
    replays = [
        ({"q": "doc{00000000000}", "PageSize": 5, "Cursor": cursor}, world["token_a"]),
        ({**body, "Tags": {"lote": "L1"}, "Cursor": cursor}, world["token_a"]),
        ({**body, "QueryDate": "2025-06-01", "Cursor": cursor}, world["token_a"]),
        ({**body, "Cursor": cursor}, world["token_b"]),
    ]
    for replay, headers in replays:
        answer = await service.post("/events", replay, headers=headers)
        assert answer.status == 400, replay
        assert answer.body["Status"]["parameter"] == "Cursor"
        assert "different search" in answer.body["Status"]["message"]
    same = await service.post("/events", {**body, "q": f"doc{{ {world['doc']} }}", "Cursor": cursor},
                              headers=world["token_a"])
    assert same.status == 200


async def test_a_tampered_cursor_is_400_never_a_query(service: QueryService, world: dict[str, Any]) -> None:
    body = {"q": f"doc{{{world['doc']}}}", "PageSize": 5}
    cursor = (await service.post("/events", body, headers=world["token_a"])).body["Cursor"]
    head, signature = cursor.split(".")
    for bad in (head[:-2] + ("AA" if not head.endswith("AA") else "BB") + "." + signature,
                head + "." + signature[::-1], cursor + "x", "." + signature):
        answer = await service.post("/events", {**body, "Cursor": bad}, headers=world["token_a"])
        assert answer.status == 400 and answer.body["Status"]["parameter"] == "Cursor", bad


@pytest.fixture(scope="module")
async def sparse(stack: Stack, ch) -> dict[str, Any]:  # noqa: ANN001
    """Two tags each on ~600 calls that share only 12: pages need many candidate batches."""
    factory = RecordFactory(seed=9)
    company = unique_company("sparse")
    records = []
    for n in range(1200):
        tags = {"x": "1"} if n % 2 == 0 else {"y": "1"}
        if n % 100 == 0:
            tags = {"x": "1", "y": "1"}
        records.append(factory.record(START + timedelta(seconds=n), company=company, tags=tags, result={}))
    await raw_insert(ch, records)
    return {"records": records, "token": bearer(create_token(stack, company))}


async def test_sparse_intersections_are_walked_completely(service: QueryService, sparse: dict[str, Any]) -> None:
    ids, pages = await _walk(service, {"Tags": {"x": "1", "y": "1"}, "PageSize": 5}, sparse["token"])
    assert ids == _newest_first([r for r in sparse["records"] if r["tags"] == {"x": "1", "y": "1"}])
    assert pages == 3


async def test_records_years_apart_are_all_found_in_order(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    """Pages read time windows newest first and widen them when a window runs dry: records hours,
    days, months and years apart still come back, each once, in order."""
    factory, company = RecordFactory(seed=31), unique_company("years")
    doc, now = cpf(factory.rng), datetime.now(UTC)
    ages = [timedelta(hours=1), timedelta(days=3), timedelta(days=3, seconds=1), timedelta(days=20),
            timedelta(days=100), timedelta(days=400), timedelta(days=1000), timedelta(days=4000)]
    records = [factory.record(now - age, company=company, q=f"doc{{{doc}}}", tags={"k": "v", "o": str(n % 2)})
               for n, age in enumerate(ages)]
    await raw_insert(ch, records)
    token = bearer(create_token(stack, company))
    for size in (1, 2, 3):
        ids, _ = await _walk(service, {"q": f"doc{{{doc}}}", "PageSize": size}, token)
        assert ids == _newest_first(records), size
        ids, _ = await _walk(service, {"Tags": {"k": "v", "o": "1"}, "PageSize": size}, token)
        assert ids == _newest_first([r for r in records if r["tags"]["o"] == "1"]), size
