"""`q` values of documents (CPF, CNPJ, CEP, dates) match whether typed with punctuation or not:
stored and searched as their digits by the one SQL function (`trilha_q_terms`, migration 0030),
and calls stored before that migration are found by both spellings after its backfill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import clickhouse_migrations, cluster
from schemas.migrations import for_layout, statements
from services.runtime import clients
from services.stack.records import RecordFactory
from tests.query.support import QueryService, bearer, create_token, query_service, raw_insert, unique_company
from tests.stack import Stack

START = datetime(2025, 9, 1, tzinfo=UTC)
CPF, CPF_BARE = "520.494.096-05", "52049409605"
CNPJ, CNPJ_BARE = "12.345.678/0001-90", "12345678000190"


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-documents") as running:
        yield running


async def _found(service: QueryService, token: dict[str, str], q: str) -> set[str]:
    answer = await service.post("/events", {"q": q, "PageSize": 1000}, headers=token)
    assert answer.status == 200, answer.body
    return {r["query_id"] for r in answer.body["Result"]}


def _records(company: str, qs: list[str], seed: int) -> list[dict[str, Any]]:
    factory = RecordFactory(seed=seed)
    return [factory.record(START + timedelta(minutes=n), company=company, q=q) for n, q in enumerate(qs)]


@pytest.fixture(scope="module")
async def stored(stack: Stack, ch: AsyncClient) -> dict[str, Any]:
    """One company's calls, each document once with punctuation and once without."""
    company = unique_company("docs")
    qs = [f"doc{{{CPF}}}", f"doc{{{CPF_BARE}}}", f"cnpj{{{CNPJ}}}", f"cnpj{{ {CNPJ_BARE} }}", "cep{01310-100}",
          "nome{Ana-Maria}", "data{2026-11-29}", "valor{10.50}"]
    records = _records(company, qs, seed=13)
    await raw_insert(ch, records)
    return {"ids": {q: r["query_id"] for q, r in zip(qs, records, strict=True)},
            "token": bearer(create_token(stack, company))}


@pytest.mark.parametrize(("spellings", "stored_as"), [
    ([f"doc{{{CPF}}}", f"doc{{{CPF_BARE}}}", "doc{520 494 096 05}", "DOC{ 520.494.096/05 }"],
     [f"doc{{{CPF}}}", f"doc{{{CPF_BARE}}}"]),
    ([f"cnpj{{{CNPJ}}}", f"cnpj{{{CNPJ_BARE}}}"], [f"cnpj{{{CNPJ}}}", f"cnpj{{ {CNPJ_BARE} }}"]),
    (["cep{01310-100}", "cep{01310100}", "cep{01.310-100}"], ["cep{01310-100}"]),
])
async def test_a_document_is_found_by_either_spelling(service: QueryService, stored: dict[str, Any],
                                                      spellings: list[str], stored_as: list[str]) -> None:
    expected = {stored["ids"][q] for q in stored_as}
    for q in spellings:
        assert await _found(service, stored["token"], q) == expected, q


async def test_a_date_matches_with_its_parts_in_the_same_order(service: QueryService, stored: dict[str, Any]) -> None:
    """A date is digits and separators too: its separators do not matter, the order of its parts does."""
    date = {stored["ids"]["data{2026-11-29}"]}
    for q in ("data{2026-11-29}", "data{20261129}", "data{2026/11/29}"):
        assert await _found(service, stored["token"], q) == date, q
    assert await _found(service, stored["token"], "data{29/11/2026}") == set()


async def test_other_values_match_only_as_typed(service: QueryService, stored: dict[str, Any]) -> None:
    assert await _found(service, stored["token"], "NOME{Ana-Maria}") == {stored["ids"]["nome{Ana-Maria}"]}
    assert await _found(service, stored["token"], "nome{AnaMaria}") == set()
    assert await _found(service, stored["token"], "valor{10.50}") == {stored["ids"]["valor{10.50}"]}
    assert await _found(service, stored["token"], "valor{1050}") == set()


def _backfill() -> str:
    """The backfill statement of migration 0030 as written there, kept to one company's calls (the
    other tests' calls were stored after the migration)."""
    sql = dict(clickhouse_migrations())["0030_q_document_values"]
    (statement,) = [s for s in statements(sql) if s.startswith("INSERT INTO")]
    head, settings_clause = statement.split("\nSETTINGS ")
    return f"{head} AND company_id = {{company:String}}\nSETTINGS {settings_clause}"


async def _on_each_shard(stack: Stack, sql: str, parameters: dict[str, Any]) -> None:
    """Run `sql` as the migrations run it: rewritten for the stack's layout, on every DDL target."""
    for target in cluster.ddl_targets(stack.settings):
        client = await clients.clickhouse(target)
        try:
            for part in for_layout(sql, cluster.layout(stack.settings)):
                await client.command(part, parameters=parameters)
        finally:
            await client.close()


@pytest.mark.parametrize("once_through_distributed", [False, True])
async def test_calls_stored_before_the_migration_are_found_by_both_spellings_after_its_backfill(
        stack: Stack, ch: AsyncClient, service: QueryService, once_through_distributed: bool) -> None:
    """The backfill as `trilha migrate` runs it on this stack (per embedded shard, local tables), and
    as a replicated cluster runs it (once, as written, through the Distributed tables): either way
    each new term is written once, on its call's shard, and both spellings find the calls."""
    company = unique_company("before")
    qs = [f"doc{{{CPF}}}", f"doc{{{CPF_BARE}}},cep{{01310-100}}", f"cnpj{{{CNPJ}}},cnpj{{{CNPJ.replace('.', ' ')}}}",
          "nome{Ana-Maria}"]
    records = _records(company, qs, seed=14)
    await raw_insert(ch, records)
    token = bearer(create_token(stack, company))
    # As stored before 0030: the new spelling of a value typed with punctuation was never written.
    table = "call_terms_local" if cluster.layout(stack.settings).cluster else "call_terms"
    for term, record in ((f"q:doc{{{CPF_BARE}}}", records[0]), ("q:cep{01310100}", records[1]),
                         (f"q:cnpj{{{CNPJ_BARE}}}", records[2])):
        await _on_each_shard(stack, f"DELETE FROM {table} WHERE company_id = {{company:String}} "
                                    "AND term = {term:String} AND query_id = {id:String}",
                             {"company": company, "term": term, "id": record["query_id"]})
    assert await _found(service, token, f"doc{{{CPF}}}") == {records[1]["query_id"]}

    if once_through_distributed:
        await ch.command(_backfill(), parameters={"company": company})
    else:
        await _on_each_shard(stack, _backfill(), {"company": company})

    rows = await ch.query("SELECT term, query_id, shardNum(), count() FROM call_terms "
                          "WHERE company_id = {company:String} GROUP BY ALL", parameters={"company": company})
    counts = {(term, qid): n for term, qid, _, n in rows.result_rows}
    assert set(counts.values()) == {1} and len(counts) == len(rows.result_rows), rows.result_rows
    assert counts[(f"q:doc{{{CPF_BARE}}}", records[0]["query_id"])] == 1
    assert (f"q:cnpj{{{CNPJ_BARE}}}", records[2]["query_id"]) in counts
    calls = await ch.query("SELECT query_id, shardNum() FROM calls WHERE company_id = {company:String}",
                           parameters={"company": company})
    assert {(qid, shard) for _, qid, shard, _ in rows.result_rows} <= set(calls.result_rows)
    for q in (f"doc{{{CPF}}}", f"doc{{{CPF_BARE}}}"):
        assert await _found(service, token, q) == {records[0]["query_id"], records[1]["query_id"]}, q
    assert await _found(service, token, "cep{01310100}") == {records[1]["query_id"]}
    assert await _found(service, token, f"cnpj{{{CNPJ_BARE}}}") == {records[2]["query_id"]}
    assert await _found(service, token, "nome{Ana-Maria}") == {records[3]["query_id"]}


_SEPARATORS = st.text(alphabet=".-/ ", min_size=1, max_size=3)


@st.composite
def punctuated(draw: st.DrawFn) -> tuple[str, str]:
    """Digits with separators inserted anywhere between them: (as typed, bare)."""
    parts = draw(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=2, max_size=6))
    typed = parts[0] + "".join(draw(_SEPARATORS) + part for part in parts[1:])
    return typed, "".join(parts)


async def _terms(ch: AsyncClient, *qs: str) -> list[list[str]]:
    names = [f"q{n}" for n in range(len(qs))]
    sql = "SELECT " + ", ".join(f"trilha_q_terms({{{name}:String}})" for name in names)
    return list((await ch.query(sql, parameters=dict(zip(names, qs, strict=True)))).result_rows[0])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=punctuated(), key=st.sampled_from(["doc", "CPF", "cnpj", "cep"]))
async def test_a_punctuated_number_is_stored_as_its_digits(ch: AsyncClient, value: tuple[str, str], key: str) -> None:
    """Never two terms for one number, however it is punctuated (a plain decimal `10.50` aside)."""
    typed, bare = value
    assume(not (typed.count(".") == 1 and set(typed) <= set("0123456789.")))
    assert await _terms(ch, f"{key}{{{typed}}}", f"{key}{{ {bare} }}") == [[f"q:{key.lower()}{{{bare}}}"]] * 2


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=st.text(alphabet=st.characters(exclude_characters="{},", exclude_categories=["Cs"]), max_size=20))
async def test_a_value_with_anything_but_digits_and_separators_is_never_changed(ch: AsyncClient, value: str) -> None:
    assume(not set(value.strip(" ")) <= set("0123456789.-/ "))
    (terms,) = await _terms(ch, f"k{{{value}}}")
    assert terms == [f"q:k{{{value.strip(' ')}}}"]
