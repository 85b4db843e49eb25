"""A `ReportFilter` → ClickHouse SQL over `calls`, scoped to the caller's company, whose every value
is a bound parameter.

The SQL text depends only on *which* filters are present, never on their values, so nothing a
caller types can change a statement. Every statement is built by `over_calls` from the caller's
`TenantScope` (`WHERE company_id = {company:String} AND <filters>`), and reads `calls` newest first
over its sorting key (company_id, timestamp, query_id) with the keyset, the record columns and the
de-duplication rule every reader of `calls` shares (`query.calls`): bounded reads (a page, the
print view) return the key with each row and `query.calls.newest` drops unmerged copies; the full
CSV export, which streams the engine's own bytes, has the engine drop them (`LIMIT 1 BY` on the
same key: a full read has no early stop to lose). Searching by client or authorization name goes
through `trilha_fold`, the same function that filled `client_folded`/`authorization_folded`, so
"joao" finds "João".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from query.access.tenant import CONDITION, Statement, TenantScope
from query.calls import keyset, records
from query.calls.keyset import Key
from query.reports.fields import fields, word
from query.reports.filters import ReportFilter

DT = "DateTime64(3, 'UTC')"
READ_SETTINGS = {**records.SETTINGS, "max_execution_time": 60}  # a page or the print view
# The record fields of a JSON page, in the report's column order.
PAGE_FIELDS = ("query_id", "client_id", "client_name", "client_username", "authorization_id", "authorization_name",
               "ip", "resource", "event", "method", "status", "url", "server", "error", "duration_ms", "timestamp")
KEY_COLUMNS = "toUnixTimestamp64Milli(timestamp), query_id"
# The address as people write it (a.b.c.d for IPv4 callers), defined once in migration 0006.
IP_TEXT = "trilha_ip_text(ip)"
CLIENT_TEXT = ("toValidUTF8(if(client_name != '' AND client_username != '', "
               "concat(client_name, ' (', client_username, ')'), concat(client_name, client_username)))")
# Text as shown: a String holds bytes, and rows stored before the contract required UTF-8 may hold
# invalid sequences; shown with U+FFFD in their place, never as an error.
_SHOWN = "toValidUTF8({})"


def shown(column: str) -> str:
    """A String column as text a page can show (invalid UTF-8 as U+FFFD)."""
    return _SHOWN.format(column)


def utc(moment: datetime) -> datetime:
    """A DateTime64 read from ClickHouse (naive means UTC) as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_seconds(moment: datetime) -> str:
    """An instant as the report API answers it: RFC 3339 UTC to the second, `...T06:00:00Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def ch_time(moment: datetime) -> str:
    """A UTC instant as ClickHouse parses a DateTime64(3) parameter."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def filters(flt: ReportFilter) -> tuple[str, dict[str, Any]]:
    """` AND <each present filter>` with bound values only."""
    clauses: list[str] = []
    params: dict[str, Any] = {}

    def add(clause: str, **values: Any) -> None:
        clauses.append(clause)
        params.update(values)

    if flt.since is not None:
        add(f"timestamp >= {{since:{DT}}}", since=ch_time(flt.since))
    if flt.until is not None:
        add(f"timestamp < {{until:{DT}}}", until=ch_time(flt.until))
    if flt.client_id is not None:
        add("client_id = {client_id:String}", client_id=flt.client_id)
    if flt.client is not None:
        add("position(client_folded, trilha_fold({client:String})) > 0", client=flt.client)
    if flt.authorization_id is not None:
        add("authorization_id = {authorization_id:String}", authorization_id=flt.authorization_id)
    if flt.authorization is not None:
        add("position(authorization_folded, trilha_fold({authorization:String})) > 0",
            authorization=flt.authorization)
    if flt.ip is not None:
        add("ip BETWEEN {ip_low:IPv6} AND {ip_high:IPv6}", ip_low=flt.ip[0], ip_high=flt.ip[1])
    if flt.resource is not None:
        add("resource = {resource:String}", resource=flt.resource)
    if flt.status is not None:
        add("status BETWEEN {status_low:UInt16} AND {status_high:UInt16}",
            status_low=flt.status[0], status_high=flt.status[1])
    if flt.error is not None:
        add("error = {error:Bool}", error=flt.error)
    return "".join(f" AND {c}" for c in clauses), params


def over_calls(scope: TenantScope, flt: ReportFilter, select: str, tail: str = "", *, final: bool = False,
               after: Key | None = None, params: dict[str, Any] | None = None) -> Statement:
    """`SELECT <select> FROM calls [FINAL] WHERE <company> <filters> [<keyset>] <tail>`, scoped."""
    where, bound = filters(flt)
    if after is not None:
        where += f" AND {keyset.after()}"
        bound.update(keyset.after_params(after))
    table = "calls FINAL" if final else "calls"
    return scope.statement(f"SELECT {select} FROM {table} WHERE {CONDITION}{where} {tail}".rstrip(),
                           {**bound, **(params or {})})


def page(scope: TenantScope, flt: ReportFilter, limit: int, after: Key | None = None) -> Statement:
    """Up to `limit` stored rows of the page's fields newest first, strictly after the keyset
    `after` (a duplicate comes back twice, next to itself: the reader drops it)."""
    return over_calls(scope, flt, records.columns(PAGE_FIELDS), f"{keyset.ORDER} LIMIT {{limit:UInt32}}",
                      after=after, params={"limit": limit})


def rendered(scope: TenantScope, flt: ReportFilter, lang: str, tz: str, guard_formulas: bool = True) -> Statement:
    """Every matching row once, each column as the text CSV and print show, rendered by ClickHouse.

    Rendering in the engine lets the CSV export stream the engine's own output straight to the
    caller (constant memory in the query service, whatever the row count).
    """
    exprs, params = _rendered_columns(lang, tz, guard_formulas)
    return over_calls(scope, flt, exprs, f"{keyset.ORDER} LIMIT 1 BY timestamp, query_id", params=params)


def rendered_page(scope: TenantScope, flt: ReportFilter, lang: str, tz: str, limit: int,
                  after: Key | None = None) -> Statement:
    """Like `rendered` for at most `limit` stored rows after `after`, with the key as the last two
    columns (duplicates included: the reader drops them)."""
    exprs, params = _rendered_columns(lang, tz, guard_formulas=False)
    return over_calls(scope, flt, f"{exprs}, {KEY_COLUMNS}", f"{keyset.ORDER} LIMIT {{limit:UInt32}}",
                      after=after, params={**params, "limit": limit})


def _rendered_columns(lang: str, tz: str, guard_formulas: bool) -> tuple[str, dict[str, Any]]:
    params = {"word_yes": word("yes", lang), "word_no": word("no", lang), "tz": tz,
              "decimal": word("decimal_separator", lang)}
    return ", ".join(_render(f.kind, f.sources[0], guard_formulas) for f in fields()), params


def _render(kind: str, column: str, guard_formulas: bool) -> str:
    if kind == "ip":
        return IP_TEXT
    if kind == "status":
        return "if(status = 0, '', toString(status))"
    if kind == "bool":
        return "if(error, {word_yes:String}, {word_no:String})"
    if kind == "duration":
        return "replaceOne(toString(round(duration_ms, 3)), '.', {decimal:String})"
    if kind == "datetime":
        return "formatDateTime(timestamp, '%d/%m/%Y %H:%i', {tz:String})"
    expr = CLIENT_TEXT if kind == "client" else shown(column)
    return _formula_guard(expr) if guard_formulas else expr


def _formula_guard(expr: str) -> str:
    """A text starting with = + - @ (or tab/CR) gets a leading apostrophe so a spreadsheet shows it
    as text instead of running it as a formula (CSV injection, OWASP)."""
    return f"if(match({expr}, '^[=+\\\\-@\\\\t\\\\r]'), concat('''', {expr}), {expr})"
