"""Applies the ClickHouse migrations in `schemas/clickhouse/` in order, each once.

Applied migrations are recorded in `trilha_migrations`, so every process can call this at
start-up; statements are idempotent (`IF NOT EXISTS`) so a run cut short is safe to repeat.
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.asyncclient import AsyncClient

from schemas import clickhouse_migrations

_LEDGER = """
CREATE TABLE IF NOT EXISTS trilha_migrations
(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY name
"""


def statements(sql: str) -> list[str]:
    """Split a migration file on `;` at line ends, dropping chunks that are only comments."""
    chunks = re.split(r";[ \t]*(?:\n|$)", sql)
    return [c.strip() for c in chunks if any(line.strip() and not line.strip().startswith("--")
                                             for line in c.splitlines())]


async def apply(client: AsyncClient) -> list[str]:
    """Apply what is missing; returns the names applied by this call."""
    await client.command(_LEDGER)
    done = {row[0] for row in (await client.query("SELECT name FROM trilha_migrations FINAL")).result_rows}
    applied = []
    for name, sql in clickhouse_migrations():
        if name in done:
            continue
        for statement in statements(sql):
            await client.command(statement)
        await client.command("INSERT INTO trilha_migrations (name) VALUES ({name:String})",
                             parameters={"name": name})
        applied.append(name)
    return applied
