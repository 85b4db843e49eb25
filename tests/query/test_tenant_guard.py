"""The tenant guard: a statement over a tenant-scoped table without the caller's company is refused
before it reaches ClickHouse, every statement the service builds passes it, and — a property over
companies and parameters, against the real ClickHouse — rows of another company never come back."""

from __future__ import annotations

import ast
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.access import tenant
from query.access.tenant import (
    SCHEDULER_READS_EVERY_COMPANY,
    CrossTenant,
    Statement,
    TenantConditionMissing,
    TenantScope,
    cross_tenant,
)
from query.calls.keyset import Key
from query.events import sql as events_sql
from query.events import store as events_store
from query.reports import page, schedules
from query.reports import sql as reports_sql
from query.reports.filters import ReportFilter
from services.stack.records import RecordFactory
from tests.query.support import raw_insert, unique_company
from tests.stack import ROOT

SCOPE = TenantScope("company-a")


class NeverCalled:
    """A client that fails the test if a statement reaches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused statement reached ClickHouse ({name})")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM calls",
    "SELECT * FROM calls WHERE 1",
    "SELECT * FROM calls WHERE query_id = {q:String} AND company_id = {company:String}",
    "SELECT * FROM calls WHERE company_id = {company:String} OR 1",
    "SELECT * FROM calls WHERE company_id = {company:String} AND status = 1 OR error",
    "SELECT count() FROM call_terms FINAL",
    "SELECT * FROM call_ids WHERE company_id = {other:String}",
    "SELECT x FROM (SELECT 1 AS x) JOIN calls USING (x)",
    "SELECT schedule_id FROM report_runs GROUP BY schedule_id",
    "SELECT * FROM report_schedules WHERE 1 AND company_id = {company:String}",
    "INSERT INTO report_runs (schedule_id, company_id) VALUES ({id:String}, {company:String})",
    "SELECT * FROM default.calls", "SELECT * FROM `calls`", "SELECT * FROM calls_local",
    "SELECT * FROM calls AS c WHERE c.company_id = {company:String}",
])
async def test_a_statement_without_the_company_condition_is_refused_before_clickhouse(sql: str) -> None:
    with pytest.raises(TenantConditionMissing):
        SCOPE.statement(sql)
    for run in (tenant.query, tenant.raw_query, tenant.raw_stream, tenant.command):
        with pytest.raises(TenantConditionMissing):
            await run(NeverCalled(), Statement(sql, {"company": "company-a"}))


async def test_a_statement_needs_a_scope_and_its_own_company() -> None:
    good = SCOPE.statement("SELECT 1 FROM calls WHERE company_id = {company:String} AND (a OR b)")
    assert good.params == {"company": "company-a"}
    refused = [replace(good, scope=None), replace(good, params={"company": "company-b"}),
               replace(good, params={}), replace(good, scope=TenantScope("company-b"))]
    for statement in refused:
        with pytest.raises(TenantConditionMissing):
            await tenant.query(NeverCalled(), statement)
    with pytest.raises(TenantConditionMissing):
        await tenant.query(NeverCalled(), good.sql)  # type: ignore[arg-type]  # plain text is no statement
    for company in ("", None, 7):
        with pytest.raises(TenantConditionMissing):
            TenantScope(company)  # type: ignore[arg-type]
    with pytest.raises(TenantConditionMissing):
        SCOPE.statement(good.sql, {"company": "company-b"})
    with pytest.raises(TenantConditionMissing):
        cross_tenant("because", "SELECT * FROM calls")  # type: ignore[arg-type]  # only a named exemption


def test_tenant_tables_come_from_the_migrations() -> None:
    assert tenant.tenant_tables() == {"calls", "call_ids", "call_terms", "report_schedules", "report_runs",
                                      "gateway_blocks"}


def test_every_statement_the_service_builds_passes_the_guard() -> None:
    for flags in itertools.product((False, True), repeat=3):
        for sql in (events_sql.page_single_term(*flags), events_sql.driver_keys(*flags),
                    events_sql.term_counts(3, *flags[1:])):
            SCOPE.statement(sql)
    for sql in (events_sql.query_id_timestamps(), events_sql.by_query_id_between(), events_sql.rows_with_all_terms()):
        SCOPE.statement(sql)
    every = ReportFilter(client_id="c", client="x", authorization_id="a", authorization="b", ip=("::", "::1"),
                         resource="r", status=(400, 499), error=True, since=datetime(2025, 1, 1, tzinfo=UTC),
                         until=datetime(2025, 2, 1, tzinfo=UTC))
    for flt in (ReportFilter(), every):
        for after in (None, Key(1, "q")):
            assert reports_sql.page(SCOPE, flt, 10, after).params["company"] == "company-a"
            reports_sql.rendered_page(SCOPE, flt, "pt", "UTC", 10, after)
        reports_sql.rendered(SCOPE, flt, "en", "UTC")


def test_the_only_cross_tenant_exemption_is_the_schedulers() -> None:
    """Greppable: exemptions are made in the guard's module only, there is one, and only the
    scheduler uses it (the functions that read every company demand it as an argument)."""
    made, used = set(), set()
    for path in (ROOT / "query").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "CrossTenant":
                made.add(path.name)
            if isinstance(node, ast.Name) and node.id == "SCHEDULER_READS_EVERY_COMPANY":
                used.add(path.name)
    assert made == {"tenant.py"}
    assert used == {"tenant.py", "scheduler.py"}
    assert isinstance(SCHEDULER_READS_EVERY_COMPANY, CrossTenant)


def test_no_query_module_talks_to_clickhouse_around_the_guard() -> None:
    """Only the guard runs statements; the token store reads `api_tokens` (keyed by token, not
    tenant-scoped) and the fair-use wrapper only forwards."""
    allowed = {Path("query/access/tenant.py"), Path("query/access/tokens.py"), Path("query/access/fair_use.py")}
    methods = {"query", "raw_query", "raw_stream", "command", "insert", "raw_insert"}
    offenders = []
    for path in (ROOT / "query").rglob("*.py"):
        if path.relative_to(ROOT) in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods \
                    and getattr(node.func.value, "id", "") not in {"tenant", "re", "cursor"}:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    assert not offenders, offenders


@pytest.fixture(scope="module")
async def two_companies(ch) -> AsyncIterator[dict[str, Any]]:  # noqa: ANN001
    """Two companies with calls about the same documents, and a schedule each (deleted afterwards:
    the scheduler tests run every company's due schedules on the shared ClickHouse)."""
    factory = RecordFactory(seed=515)
    a, b = unique_company("guard-a"), unique_company("guard-b")
    start = datetime.now(UTC) - timedelta(hours=3)
    records = [factory.record(start + timedelta(seconds=n), company=(a, b)[n % 2], q=f"doc{{{n % 7}}}",
                              tags={"lote": f"L{n % 3}"}) for n in range(60)]
    await raw_insert(ch, records)
    spec = {"name": "", "filters": {}, "recurrence": {"frequency": "daily", "time": "06:00", "tz": "UTC"},
            "range": "previous_day", "format": "csv", "lang": "pt", "csv": {"sep": ";", "bom": True},
            "destination": {"type": "directory", "path": "guard"}}
    made = [await schedules.create(ch, company, "token", spec) for company in (a, b)]
    yield {"companies": [a, b, unique_company("guard-none")], "records": records,
           "ids": {r["query_id"]: r["company_id"] for r in records}}
    for schedule in made:
        assert await schedules.delete(ch, schedule.company_id, schedule.schedule_id)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_rows_of_another_company_never_come_back(ch, two_companies: dict[str, Any],  # noqa: ANN001
                                                     data: st.DataObject) -> None:
    world = two_companies
    company = data.draw(st.sampled_from(world["companies"]), "company")
    scope = TenantScope(company)
    record = data.draw(st.sampled_from(world["records"]), "record")
    found = await events_store.record_by_query_id(ch, scope, record["query_id"], None)
    assert (found is not None) == (record["company_id"] == company)
    assert found is None or found["company_id"] == company
    terms = data.draw(st.lists(st.sampled_from([f"q:doc{{{n}}}" for n in range(7)] + ["t:lote=L1"]),
                               min_size=1, max_size=2, unique=True), "terms")
    terms = await events_store.search_terms(ch, ",".join(t[2:] for t in terms if t.startswith("q:")) or None,
                                            {"lote": "L1"} if "t:lote=L1" in terms else {})
    size = data.draw(st.integers(1, 40), "page size")
    searched = await events_store.search(ch, scope, terms, None, size, None)
    assert all(r["company_id"] == company for r in searched.records)
    status = data.draw(st.one_of(st.none(), st.sampled_from([(200, 299), (400, 499), (500, 599)])), "status")
    answer = await page.fetch(ch, ReportFilter(status=status), scope, size, None, "secret")
    assert all(world["ids"].get(row["query_id"], company) == company for row in answer["rows"])
    assert all(s.company_id == company for s in await schedules.list_for(ch, company))
    assert all(s.company_id == company for s in await schedules.run_states(ch, company))
    everyone = await schedules.all_active(ch, SCHEDULER_READS_EVERY_COMPANY)
    assert {s.company_id for s in everyone} >= set(world["companies"][:2]), "the exemption does read them all"
