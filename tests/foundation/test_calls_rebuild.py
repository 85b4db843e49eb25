"""Migration 0040 rebuilds `calls` with small granules: every stored row survives, once, on this
stack's layout (1 node or embedded shards), the views keep filling the lookup tables, and rows a
writer stored during the copy are carried over too."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from schemas import clickhouse_migrations, cluster
from schemas.migrations import statements
from tests.ingest.support import record_values
from tests.query.support import INSERT_SETTINGS, on_each_shard, unique_company
from tests.stack import Stack


async def _store(ch: AsyncClient, values: list[bytes]) -> None:
    await ch.raw_insert("calls", None, b"\n".join(values), fmt="JSONEachRow", settings=INSERT_SETTINGS)


async def _counts(ch: AsyncClient, table: str, company: str) -> tuple[int, int]:
    rows = await ch.query(f"SELECT count(), uniqExact(query_id) FROM {table} WHERE company_id = {{c:String}}",
                          parameters={"c": company})
    return rows.result_rows[0]


async def test_rebuilding_calls_keeps_every_row_once_and_the_views_follow(stack: Stack, ch: AsyncClient) -> None:
    company = unique_company("rebuild")
    before, during, after = (record_values(n, company, seed=seed) for n, seed in ((40, 1), (7, 2), (3, 3)))
    await _store(ch, before)
    steps = statements(dict(clickhouse_migrations())["0040_calls_small_granules"])
    swap = next(n for n, s in enumerate(steps) if s.startswith("EXCHANGE"))
    for statement in steps[:swap]:  # the new table and the copy
        await on_each_shard(stack, statement)
    await _store(ch, during)  # a writer that did not stop: into the old table, after the copy
    for statement in steps[swap:]:  # the swap, the catch-up, the drop
        await on_each_shard(stack, statement)
    await _store(ch, after)

    assert await _counts(ch, "calls", company) == (50, 50)  # every row, none twice
    ids = await ch.query("SELECT uniqExact(query_id) FROM call_ids WHERE company_id = {c:String}",
                         parameters={"c": company})
    assert ids.result_rows[0][0] == 50  # the view reads the new `calls`
    local = "calls_local" if cluster.layout(stack.settings).cluster else "calls"
    made: Any = await ch.query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
                               "AND name = {t:String}", parameters={"t": local})
    assert "index_granularity_bytes = 1048576" in made.result_rows[0][0]
    left = await ch.query("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name LIKE 'calls_regranulated%'")
    assert left.result_rows[0][0] == 0
