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


_CREATE = re.compile(
    r"^((?:CREATE\s+(?:TABLE|MATERIALIZED\s+VIEW|FUNCTION)\s+IF\s+NOT\s+EXISTS|ALTER\s+TABLE)\s+\w+)", re.I)
_ENGINE = re.compile(r"ENGINE\s*=\s*(Replacing|Aggregating|Summing)?MergeTree\b(\s*\(\s*\))?", re.I)


def for_cluster(statement: str, cluster: str) -> str:
    """The same DDL for a replicated cluster: `ON CLUSTER` and Replicated* engines.

    Keeping one set of migration files for the embedded engine and for production means the
    schema cannot drift between what the tests run and what is deployed.
    """
    statement = _CREATE.sub(lambda m: f"{m.group(1)} ON CLUSTER '{cluster}'", statement, count=1)
    return _ENGINE.sub(lambda m: f"ENGINE = Replicated{m.group(1) or ''}MergeTree", statement)


def statements(sql: str) -> list[str]:
    """Split a migration file on `;` at line ends; full-line `--` comments are dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [chunk.strip() for chunk in re.split(r";[ \t]*(?:\n|$)", code) if chunk.strip()]


async def apply(client: AsyncClient, cluster: str = "") -> list[str]:
    """Apply what is missing; returns the names applied by this call."""
    await client.command(for_cluster(_LEDGER.strip(), cluster) if cluster else _LEDGER)
    done = {row[0] for row in (await client.query("SELECT name FROM trilha_migrations FINAL")).result_rows}
    applied = []
    for name, sql in clickhouse_migrations():
        if name in done:
            continue
        for statement in statements(sql):
            await client.command(for_cluster(statement, cluster) if cluster else statement)
        await client.command("INSERT INTO trilha_migrations (name) VALUES ({name:String})",
                             parameters={"name": name})
        applied.append(name)
    return applied
