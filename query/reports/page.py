"""One JSON page of the report, newest first, with a signed keyset cursor to the next.

Paging seeks on (timestamp, query_id), the table's sorting key after the company, so page N
costs what page 1 costs and a row inserted meanwhile never shifts or repeats another (no
OFFSET). The cursor is bound to the company and to the filters' canonical form: replaying it
with other filters, or with another company's token, is a 400 before any query runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.calls import cursor
from query.reports import newest, sql
from query.reports.filters import ReportFilter

DEFAULT_PAGE_SIZE = 30  # the seed's screen shows 30 records per page
MAX_PAGE_SIZE = 1000
SCOPE_KIND = "reports/api-logs"
_TIMESTAMP, _QUERY_ID = list(sql.JSON_COLUMNS).index("timestamp"), list(sql.JSON_COLUMNS).index("query_id")


def scope(flt: ReportFilter, company_id: str) -> str:
    return cursor.scope(company_id, SCOPE_KIND, flt.canonical())


def position(token: str | None, flt: ReportFilter, company_id: str, secret: str) -> tuple[datetime, str] | None:
    """Where the page starts: after the row a previous page's cursor names (400 if it is not ours)."""
    if token is None:
        return None
    payload = cursor.decode(token, scope(flt, company_id), secret, parameter="cursor")
    return cursor.keyset_position(payload, parameter="cursor")


async def fetch(ch: AsyncClient, flt: ReportFilter, company_id: str, page_size: int,
                after: tuple[datetime, str] | None, secret: str) -> dict[str, Any]:
    """`{"rows": [...], "next_cursor": str | None}`; one extra row is read to know if more exist."""
    found = await newest.rows(ch, lambda limit, key: sql.page(flt, company_id, limit, key), page_size + 1, after)
    rows = [json_row(dict(zip(sql.JSON_COLUMNS, values, strict=True))) for values in found[:page_size]]
    next_cursor = None
    if len(found) > page_size:
        last = found[page_size - 1]
        mark = cursor.keyset(newest.utc(last[_TIMESTAMP]), last[_QUERY_ID])
        next_cursor = cursor.encode(mark, scope(flt, company_id), secret)
    return {"rows": rows, "next_cursor": next_cursor}


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """Contract names and types; empty IP/status mean absent (null), the time is ISO 8601 UTC."""
    row["ip"] = row["ip"] or None
    row["status"] = row["status"] or None
    row["error"] = bool(row["error"])
    row["timestamp"] = newest.utc(row["timestamp"]).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return row

