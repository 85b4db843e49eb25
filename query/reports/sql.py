"""A `ReportFilter` → ClickHouse SQL whose every value is a bound parameter.

The SQL text depends only on *which* filters are present, never on their values, so nothing a
caller types can change a statement. Every statement starts with the company of the caller's
token, and reads `calls` newest first over its sorting key (company_id, timestamp, query_id).
A duplicate that merges have not collapsed yet is never shown twice: the full export de-duplicates
in the engine (`LIMIT 1 BY timestamp, query_id`); bounded reads (a page, the print view) return
the key with each row and `query.reports.newest` drops repeats, because `LIMIT 1 BY` stops
ClickHouse from cutting the ordered read short at the LIMIT (measured: ~200 ms instead of ~35 ms
for a page over a month of a million records). Searching by client or authorization name goes
through `trilha_fold`, the same function that filled `client_folded`/`authorization_folded`, so
"joao" finds "João".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from query.reports.fields import fields, word
from query.reports.filters import ReportFilter

DT = "DateTime64(3, 'UTC')"
ORDER = "ORDER BY timestamp DESC, query_id DESC"
NEWEST_FIRST = f"{ORDER} LIMIT 1 BY timestamp, query_id"
KEY_COLUMNS = "timestamp AS key_ts, query_id AS key_id"
# The address as people write it (a.b.c.d for IPv4 callers), defined once in migration 0006.
IP_TEXT = "trilha_ip_text(ip)"
CLIENT_TEXT = ("toValidUTF8(if(client_name != '' AND client_username != '', "
               "concat(client_name, ' (', client_username, ')'), concat(client_name, client_username)))")
# Text as shown: a String holds bytes, and rows stored before the contract required UTF-8 may hold
# invalid sequences; shown with U+FFFD in their place, never as an error (the key column, query_id,
# is kept exact: the keyset cursor seeks on it).
_SHOWN = "toValidUTF8({})"
# JSON rows: contract names and types; the timestamp goes out as ISO 8601.
JSON_COLUMNS = {
    "query_id": "query_id", **{name: _SHOWN.format(name) for name in (
        "client_id", "client_name", "client_username", "authorization_id", "authorization_name")},
    "ip": IP_TEXT, **{name: _SHOWN.format(name) for name in ("resource", "event", "method")}, "status": "status",
    "url": _SHOWN.format("url"), "server": _SHOWN.format("server"), "error": "error",
    "duration_ms": "duration_ms", "timestamp": "timestamp",
}


@dataclass
class Statement:
    """SQL text plus the values it binds; `params` is passed as clickhouse-connect `parameters=`."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def shown(column: str) -> str:
    """A String column as text a page can show (invalid UTF-8 as U+FFFD)."""
    return _SHOWN.format(column)


def utc_seconds(moment: datetime) -> str:
    """An instant as the report API answers it: RFC 3339 UTC to the second, `...T06:00:00Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def ch_time(moment: datetime) -> str:
    """A UTC instant as ClickHouse parses a DateTime64(3) parameter."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def where(flt: ReportFilter, company_id: str) -> Statement:
    """`company_id = … AND <each present filter>` with bound values only."""
    clauses = ["company_id = {company:String}"]
    params: dict[str, Any] = {"company": company_id}

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
    return Statement(" AND ".join(clauses), params)


def keyset_after(cond: Statement, after: tuple[datetime, str] | None) -> None:
    """Only rows strictly older than `after` in (timestamp, query_id) order."""
    if after is None:
        return
    # The plain bound on timestamp lets the primary key prune; the tuple makes the seek exact.
    cond.sql += (f" AND timestamp <= {{after_ts:{DT}}}"
                 f" AND (timestamp, query_id) < ({{after_ts:{DT}}}, {{after_id:String}})")
    cond.params.update(after_ts=ch_time(after[0]), after_id=after[1])


def page(flt: ReportFilter, company_id: str, limit: int, after: tuple[datetime, str] | None = None) -> Statement:
    """Up to `limit` stored rows newest first, strictly after the keyset `after`; the last two
    columns are the key (a duplicate comes back twice, next to itself)."""
    cond = where(flt, company_id)
    keyset_after(cond, after)
    # An alias equal to a column name would replace that column in WHERE too (ClickHouse lets
    # aliases be used there), so computed columns get a `_out` suffix the row builder strips.
    columns = ", ".join(f"{expr} AS {key}_out" if expr != key else key for key, expr in JSON_COLUMNS.items())
    cond.params["limit"] = limit
    return Statement(f"SELECT {columns}, {KEY_COLUMNS} FROM calls WHERE {cond.sql} {ORDER} LIMIT {{limit:UInt32}}",
                     cond.params)


def rendered(flt: ReportFilter, company_id: str, lang: str, tz: str, guard_formulas: bool = True) -> Statement:
    """Every matching row once, each column as the text CSV and print show, rendered by ClickHouse.

    Rendering in the engine lets the CSV export stream the engine's own output straight to the
    caller (constant memory in the query service, whatever the row count).
    """
    cond = where(flt, company_id)
    exprs = _rendered_columns(cond, lang, tz, guard_formulas)
    return Statement(f"SELECT {exprs} FROM calls WHERE {cond.sql} {NEWEST_FIRST}", cond.params)


def rendered_page(flt: ReportFilter, company_id: str, lang: str, tz: str, limit: int,
                  after: tuple[datetime, str] | None = None) -> Statement:
    """Like `rendered` for at most `limit` stored rows after `after`, with the key as the last two
    columns (duplicates included: the reader drops them)."""
    cond = where(flt, company_id)
    keyset_after(cond, after)
    exprs = _rendered_columns(cond, lang, tz, guard_formulas=False)
    cond.params["limit"] = limit
    return Statement(f"SELECT {exprs}, {KEY_COLUMNS} FROM calls WHERE {cond.sql} {ORDER} LIMIT {{limit:UInt32}}",
                     cond.params)


def _rendered_columns(cond: Statement, lang: str, tz: str, guard_formulas: bool) -> str:
    cond.params.update(word_yes=word("yes", lang), word_no=word("no", lang), tz=tz,
                       decimal=word("decimal_separator", lang))
    return ", ".join(_render(f.kind, f.sources[0], guard_formulas) for f in fields())


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
