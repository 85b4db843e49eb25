"""The newest N distinct records of a search, read with a plain ordered LIMIT and de-duplicated here.

A record written twice (an ingest retry in another batch) is stored twice until ClickHouse
merges the parts, and both copies sort next to each other on (timestamp, query_id). Reading
`ORDER BY timestamp DESC, query_id DESC LIMIT n` lets ClickHouse stop reading as soon as it has
n rows; this module drops a row whose key equals the previous one, and reads on after the last
key when copies made the batch come up short. The result: every record at most once, and a page
that costs what its rows cost, whatever the size of the table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.reports.sql import Statement

Key = tuple[datetime, str]
SLACK = 8  # extra rows per read, so a few unmerged copies do not cost a second round trip
SETTINGS = {"max_execution_time": 60}


async def rows(ch: AsyncClient, statement: Callable[[int, Key | None], Statement], want: int,
               after: Key | None = None) -> list[tuple[Any, ...]]:
    """Up to `want` distinct rows newest first; `statement(limit, after)` must end with the key
    columns (timestamp, query_id), which are removed from the rows returned."""
    out: list[tuple[Any, ...]] = []
    last: Key | None = None
    while True:
        limit = want - len(out) + SLACK
        stmt = statement(limit, after)
        batch = (await ch.query(stmt.sql, parameters=stmt.params, settings=SETTINGS)).result_rows
        for row in batch:
            key = (utc(row[-2]), row[-1])
            if key != last:
                out.append(tuple(row[:-2]))
                last = key
        if len(batch) < limit or len(out) >= want:
            return out[:want]
        after = last


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
