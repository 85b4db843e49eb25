"""The tenant guard: no statement over a tenant-scoped table runs without the caller's company.

A table is tenant-scoped when its sorting key starts with `company_id` (read from the migrations in
schemas/clickhouse/, not listed here): calls, call_ids, call_terms, report_schedules, report_runs.
`api_tokens` is not: a token is found by its id before any company is known, and it is the token
that names the company.

The only ways to obtain a runnable `Statement`:
- `TenantScope(company_id).statement(sql, params)`: binds `{company:String}` to the scope's company;
- `cross_tenant(EXEMPTION, sql, params)`: a named, greppable `CrossTenant` exemption (the scheduler
  reading every company's schedules is the one there is).
Every statement is checked when built and again when run (`query`, `raw_query`, `raw_stream`,
`command` below are the only paths from a statement to ClickHouse): each reference to a tenant-scoped
table must be followed by `WHERE company_id = {company:String}` with no top-level OR after it, or,
for an INSERT, name `company_id` first and bind `{company:String}` first. Anything else raises
`TenantConditionMissing` before a byte reaches ClickHouse (Snuba's mandatory tenant condition).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from schemas import clickhouse_migrations
from schemas.migrations import statements

CONDITION = "company_id = {company:String}"
_TABLE = re.compile(r"^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\b.*\bORDER\s+BY\s+\(?\s*(\w+)", re.I | re.S)
# a table named after FROM/JOIN/INTO, also as db.table, `quoted` or a shard's table_local
_REFERENCE = re.compile(r"\b(FROM|JOIN|INTO)\s+(?:[`\"]?\w+[`\"]?\.)?[`\"]?(\w+?)(?:_local)?[`\"]?(?![\w.])", re.I)
_READ_GUARD = re.compile(r"\s+(?:FINAL\s+)?WHERE\s+" + re.escape(CONDITION), re.I)
_INSERT_GUARD = re.compile(r"\s*\(\s*company_id\s*,.*?\)\s*VALUES\s*\(\s*\{company:String\}", re.I | re.S)
_CLAUSE_END = re.compile(r"\b(GROUP\s+BY|ORDER\s+BY|HAVING|LIMIT|SETTINGS|UNION|FORMAT)\b|\bOR\b", re.I)


class TenantConditionMissing(RuntimeError):
    """A statement over a tenant-scoped table without the caller's company: a bug, never run."""


@cache
def tenant_tables() -> frozenset[str]:
    """The tables whose sorting key starts with company_id, as the migrations create them."""
    found = set()
    for _, sql in clickhouse_migrations():
        for statement in statements(sql):
            match = _TABLE.match(statement)
            if match and match.group(2) == "company_id":
                found.add(match.group(1))
    return frozenset(found)


@dataclass(frozen=True)
class CrossTenant:
    """A named exemption: a statement that reads every company on purpose, and why."""

    reason: str


# The one exemption: the scheduler finds every company's due schedules and runs; each run it then
# makes reads only its schedule's company, through a TenantScope.
SCHEDULER_READS_EVERY_COMPANY = CrossTenant("the scheduler finds due schedules and runs of every company")


@dataclass(frozen=True)
class Statement:
    """SQL text with `{name:Type}` placeholders and the values bound to them; built only by a
    `TenantScope` or `cross_tenant`, and checked again when run."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    scope: TenantScope | CrossTenant | None = None


@dataclass(frozen=True)
class TenantScope:
    """The caller's company: the only way to build a statement over a tenant-scoped table."""

    company_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.company_id, str) or not self.company_id:
            raise TenantConditionMissing("a TenantScope needs the caller's company (a non-empty string)")

    def statement(self, sql: str, params: Mapping[str, Any] | None = None) -> Statement:
        """`sql` with `{company:String}` bound to this company; refused if a tenant table lacks it."""
        given = dict(params or {})
        if given.get("company", self.company_id) != self.company_id:
            raise TenantConditionMissing("a statement's company parameter must be its scope's company")
        return check(Statement(sql, {**given, "company": self.company_id}, self))


def cross_tenant(exemption: CrossTenant, sql: str, params: Mapping[str, Any] | None = None) -> Statement:
    """A statement that reads every company, allowed only under a named `CrossTenant` exemption."""
    if not isinstance(exemption, CrossTenant):
        raise TenantConditionMissing("a cross-tenant statement needs a named CrossTenant exemption")
    return Statement(sql, dict(params or {}), exemption)


def check(statement: Statement) -> Statement:
    """The statement, if every tenant-scoped table it names is bound to its scope's company."""
    if not isinstance(statement, Statement):
        raise TenantConditionMissing(f"not a tenant-checked Statement: {type(statement).__name__}")
    if isinstance(statement.scope, CrossTenant):
        return statement
    for match in _REFERENCE.finditer(statement.sql):
        if match.group(2) not in tenant_tables():
            continue
        if not isinstance(statement.scope, TenantScope) or not statement.params.get("company") \
                or statement.params["company"] != statement.scope.company_id:
            raise TenantConditionMissing(f"a statement over {match.group(2)} needs a TenantScope")
        _guarded(statement.sql, match)
    return statement


def _guarded(sql: str, match: re.Match[str]) -> None:
    table, rest = match.group(2), sql[match.end():]
    if match.group(1).upper() == "INTO":
        if not _INSERT_GUARD.match(rest):
            raise TenantConditionMissing(f"an INSERT INTO {table} must write company_id first as {{company:String}}")
        return
    guard = _READ_GUARD.match(rest)
    if guard is None:
        raise TenantConditionMissing(f"FROM {table} must be followed by WHERE {CONDITION}")
    if _top_level_or(rest[guard.end():]):
        raise TenantConditionMissing(f"the condition on {table} is undone by a top-level OR: parenthesise it")


def _top_level_or(clause: str) -> bool:
    """Whether the WHERE clause that follows the company condition has an OR outside parentheses."""
    depth, at = 0, 0
    for end in _CLAUSE_END.finditer(clause):
        segment = clause[at:end.start()]
        depth += segment.count("(") - segment.count(")")
        at = end.end()
        if depth < 0:
            return False  # the WHERE ended with its enclosing subquery
        if depth == 0:
            return end.group(0).upper() == "OR"
    return False


async def query(ch: Any, statement: Statement, settings: Mapping[str, Any] | None = None) -> Any:
    stmt = check(statement)
    return await ch.query(stmt.sql, parameters=dict(stmt.params), settings=dict(settings or {}))


async def raw_query(ch: Any, statement: Statement, settings: Mapping[str, Any] | None = None,
                    fmt: str | None = None) -> bytes:
    stmt = check(statement)
    return await ch.raw_query(stmt.sql, parameters=dict(stmt.params), settings=dict(settings or {}), fmt=fmt)


async def raw_stream(ch: Any, statement: Statement, settings: Mapping[str, Any] | None = None,
                     fmt: str | None = None) -> AsyncIterator[bytes]:
    stmt = check(statement)
    return await ch.raw_stream(stmt.sql, parameters=dict(stmt.params), settings=dict(settings or {}), fmt=fmt)


async def command(ch: Any, statement: Statement) -> Any:
    stmt = check(statement)
    return await ch.command(stmt.sql, parameters=dict(stmt.params))
