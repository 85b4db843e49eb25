"""One JSON page of the report, newest first, with a signed keyset cursor to the next.

Paging seeks on (timestamp, query_id), the table's sorting key after the company, so page N
costs what page 1 costs and a row inserted meanwhile never shifts or repeats another (no
OFFSET). The cursor is bound to the company and to the filters' canonical form: replaying it
with other filters, or with another company's token, is a 400 before any query runs. Rows become
records through the converter every reader of `calls` shares (`query.calls.records`), so a record
reads here as it reads from the Events API.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access.tenant import TenantScope
from query.calls import cursor, newest, records
from query.calls.keyset import Key
from query.reports import sql
from query.reports.filters import ReportFilter

DEFAULT_PAGE_SIZE = 30  # the seed's screen shows 30 records per page
MAX_PAGE_SIZE = 1000
SCOPE_KIND = "reports/api-logs"


def scope(flt: ReportFilter, company_id: str) -> str:
    return cursor.scope(company_id, SCOPE_KIND, flt.canonical())


def position(token: str | None, flt: ReportFilter, company_id: str, secret: str) -> Key | None:
    """Where the page starts: after the row a previous page's cursor names (400 if it is not ours)."""
    if token is None:
        return None
    return cursor.position(cursor.decode(token, scope(flt, company_id), secret, parameter="cursor"), "cursor")


async def fetch(ch: AsyncClient, flt: ReportFilter, tenant: TenantScope, page_size: int, after: Key | None,
                secret: str) -> dict[str, Any]:
    """`{"rows": [...], "next_cursor": str | None}`; one extra row is read to know if more exist."""
    async def read(limit: int, key: Key | None) -> list[dict[str, Any]]:
        return await records.json_rows(ch, sql.page(tenant, flt, limit, key), sql.READ_SETTINGS)

    found = await newest.rows(read, records.key, page_size + 1, after)
    rows = [records.to_record(row, sql.PAGE_FIELDS) for row in found[:page_size]]
    next_cursor = None
    if len(found) > page_size:
        mark = cursor.keyset(records.key(found[page_size - 1]))
        next_cursor = cursor.encode(mark, scope(flt, tenant.company_id), secret)
    return {"rows": rows, "next_cursor": next_cursor}
