"""Applies the ClickHouse migrations in `schemas/clickhouse/` in order, each once.

Applied migrations are recorded in `trilha_migrations`, so every process can call this at
start-up; statements are idempotent (`IF NOT EXISTS`) so a run cut short is safe to repeat.

One set of files serves every layout (`Layout`), so the schema cannot drift between what the
tests run and what is deployed:
- one node: the files as written;
- a cluster: each table `t` becomes `t_local` on every shard and a `Distributed` table `t` over
  them, sharded by the key its file declares (`-- shard by: <expr>`); materialized views read
  and write the local tables, so a call's lookup rows live on its call's shard. On a real cluster
  (Keeper) the local tables are `Replicated*` and DDL runs once `ON CLUSTER`; on the embedded
  shards (no Keeper, so no ON CLUSTER) the caller applies the same statements on each shard.
  A backfill (`INSERT INTO t ... SELECT ... FROM u`) must write each row once: applied per
  embedded shard it reads and writes that shard's local tables; applied once on a real cluster
  it goes through the Distributed tables, which route each row to its shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from clickhouse_connect.driver.asyncclient import AsyncClient

from schemas import clickhouse_migrations
from services.runtime.settings import ConfigError

_LEDGER = """
CREATE TABLE IF NOT EXISTS trilha_migrations
(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY name
"""

_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
_CREATE_VIEW = re.compile(r"^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
_CREATE_FUNCTION = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(\w+)", re.I)
_MODIFY_QUERY = re.compile(r"\bMODIFY\s+QUERY\b", re.I)
_INSERT_SELECT = re.compile(r"^INSERT\s+INTO\s+\w+\b.*?\bSELECT\b", re.I | re.S)
_COLUMN_CHANGE = re.compile(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
_ENGINE = re.compile(r"ENGINE\s*=\s*(Replacing|Aggregating|Summing)?MergeTree\b(\s*\(\s*\))?", re.I)
_SHARD_BY = re.compile(r"^--\s*shard by:\s*(.+?)\s*$", re.I | re.M)


@dataclass(frozen=True)
class Layout:
    """Where Trilha's tables live: `cluster` empty is one node; `replicated` is a real cluster
    with Keeper (Replicated* engines, DDL once ON CLUSTER)."""

    cluster: str = ""
    replicated: bool = False
    database: str = "default"


def statements(sql: str) -> list[str]:
    """Split a migration file on `;` at line ends; full-line `--` comments are dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [chunk.strip() for chunk in re.split(r";[ \t]*(?:\n|$)", code) if chunk.strip()]


@cache
def shard_keys() -> dict[str, str]:
    """Every table the migrations create → its sharding key (the `-- shard by:` line of its file)."""
    keys = {}
    for _, sql in clickhouse_migrations():
        key = _SHARD_BY.search(sql)
        for statement in statements(sql):
            if match := _CREATE_TABLE.match(statement):
                keys[match.group(1)] = key.group(1) if key else ""
    return keys


def for_layout(statement: str, layout: Layout) -> list[str]:
    """The statement(s) that make `statement` true in `layout`."""
    if not layout.cluster:
        return [statement]
    if layout.replicated:  # the same de-duplication window, under the replicated engines' name
        statement = re.sub(r"\bnon_replicated_deduplication_window\b", "replicated_deduplication_window", statement)
    on = f" ON CLUSTER '{layout.cluster}'" if layout.replicated else ""
    if match := _CREATE_TABLE.match(statement):
        return _table(statement, match.group(1), layout, on)
    if match := _CREATE_VIEW.match(statement):
        return [match.group(0) + on + _to_local(statement[match.end():])]
    if match := _ALTER.match(statement):
        name, rest = match.group(1), statement[match.end():]
        if _MODIFY_QUERY.search(rest):  # a view's new query reads its shard's tables, as when created
            rest = _to_local(rest)
        local = [f"ALTER TABLE {_local(name)}{on}{rest}"]
        spread = name in shard_keys() and _COLUMN_CHANGE.search(rest)
        return local + ([f"ALTER TABLE {name}{on}{rest}"] if spread else [])
    if match := _CREATE_FUNCTION.match(statement):
        return [f"{match.group(0)}{on}{statement[match.end():]}"]
    if _INSERT_SELECT.match(statement) and not layout.replicated:
        return [_to_local(statement)]
    return [statement]


def _local(name: str) -> str:
    return f"{name}_local" if name in shard_keys() else name


def _to_local(body: str) -> str:
    """A view's `TO t` and `FROM t` (a backfill's `INSERT INTO t`) name the local tables: each
    shard's view feeds its own shard."""
    names = "|".join(shard_keys())
    return re.sub(rf"\b(TO|FROM|JOIN|INSERT\s+INTO)\s+({names})\b", lambda m: f"{m.group(1)} {m.group(2)}_local", body)


def _table(statement: str, name: str, layout: Layout, on: str) -> list[str]:
    local = f"CREATE TABLE IF NOT EXISTS {name}_local{on}" + statement[_CREATE_TABLE.match(statement).end():]
    if layout.replicated:
        local = _ENGINE.sub(lambda m: f"ENGINE = Replicated{m.group(1) or ''}MergeTree", local)
    key = shard_keys().get(name, "")
    args = f"'{layout.cluster}', '{layout.database}', '{name}_local'" + (f", {key}" if key else "")
    return [local, f"CREATE TABLE IF NOT EXISTS {name}{on} AS {name}_local ENGINE = Distributed({args})"]


def ledger(layout: Layout) -> str:
    """The ledger is per node (embedded shards) or replicated with the DDL (a real cluster)."""
    if not layout.replicated:
        return _LEDGER.strip()
    return (_LEDGER.strip().replace("trilha_migrations", f"trilha_migrations ON CLUSTER '{layout.cluster}'", 1)
            .replace("ENGINE = ReplacingMergeTree", "ENGINE = ReplicatedReplacingMergeTree"))


async def _check_layout(client: AsyncClient, layout: Layout) -> None:
    """Tables made for one layout do not serve another: say so instead of answering wrongly."""
    found = await client.query("SELECT engine FROM system.tables WHERE database = currentDatabase() "
                               "AND name = 'calls'")
    if not found.result_rows:
        return
    distributed = found.result_rows[0][0] == "Distributed"
    if distributed != bool(layout.cluster):
        made = "a sharded cluster" if distributed else "one node"
        raise ConfigError(f"ClickHouse's tables were made for {made}: keep TRILHA_CLICKHOUSE_SHARDS and "
                          "TRILHA_CLICKHOUSE_CLUSTER as they were when its data was created, or start on "
                          "a new data directory")


async def apply(client: AsyncClient, layout: Layout = Layout()) -> list[str]:
    """Apply what is missing through `client` (on embedded shards: call once per shard); returns
    the names applied by this call."""
    await _check_layout(client, layout)
    await client.command(ledger(layout))
    done = {row[0] for row in (await client.query("SELECT name FROM trilha_migrations FINAL")).result_rows}
    applied = []
    for name, sql in clickhouse_migrations():
        if name in done:
            continue
        for statement in statements(sql):
            for part in for_layout(statement, layout):
                await client.command(part)
        await client.command("INSERT INTO trilha_migrations (name) VALUES ({name:String})",
                             parameters={"name": name})
        applied.append(name)
    return applied
