"""How Trilha's ClickHouse is laid out, from the settings: one node, N embedded shards on this
machine (`TRILHA_CLICKHOUSE_SHARDS`), or a real replicated cluster (`TRILHA_CLICKHOUSE_CLUSTER`).

Every process reads and writes through one URL (the first shard's, or a real cluster's load
balancer): the `Distributed` tables fan out from there. Only the migrations and the embedded
servers need to know each shard.
"""

from __future__ import annotations

from dataclasses import replace

from schemas.migrations import Layout
from services.runtime.netcheck import url_hostport
from services.runtime.settings import ConfigError, Settings
from services.stack.clickhouse_server import Endpoint

# The `<remote_servers>` name of the embedded shards (a real cluster brings its own name).
EMBEDDED_CLUSTER = "trilha_shards"


def layout(settings: Settings) -> Layout:
    if settings.clickhouse_cluster:
        return Layout(settings.clickhouse_cluster, replicated=True, database=settings.clickhouse_database)
    if settings.clickhouse_shards > 1:
        return Layout(EMBEDDED_CLUSTER, replicated=False, database=settings.clickhouse_database)
    return Layout(database=settings.clickhouse_database)


def endpoints(settings: Settings) -> tuple[Endpoint, ...]:
    """The embedded servers' ports: shard n on the HTTP port of TRILHA_CLICKHOUSE_URL + n - 1 and
    on TRILHA_CLICKHOUSE_TCP_PORT + n - 1."""
    if settings.clickhouse_shards < 1:
        raise ConfigError(f"TRILHA_CLICKHOUSE_SHARDS={settings.clickhouse_shards}: use 1 or more")
    _, http_port = url_hostport(settings.clickhouse_url, 8123)
    return tuple(Endpoint(http_port + n, settings.clickhouse_tcp_port + n) for n in range(settings.clickhouse_shards))


def ddl_targets(settings: Settings) -> list[Settings]:
    """Where migrations must run: each embedded shard (no Keeper, so no ON CLUSTER), else the one URL."""
    if settings.clickhouse_cluster or settings.clickhouse_shards == 1:
        return [settings]
    host, _ = url_hostport(settings.clickhouse_url, 8123)
    scheme = settings.clickhouse_url.split(":", 1)[0]
    return [replace(settings, clickhouse_url=f"{scheme}://{host}:{e.http_port}") for e in endpoints(settings)]
