"""Start-up checks that a process's dependencies answer, turned into one clear ConfigError."""

from __future__ import annotations

from services.runtime.netcheck import parse_hostport, reachable, url_hostport
from services.runtime.settings import ConfigError, Settings


async def require_kafka(settings: Settings, timeout: float = 15.0) -> None:
    for server in settings.kafka_bootstrap_servers.split(","):
        host, port = parse_hostport(server, 9092)
        if await reachable(host, port, timeout):
            return
    raise ConfigError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers} "
                      "(TRILHA_KAFKA_BOOTSTRAP_SERVERS): is the broker running?")


async def require_clickhouse(settings: Settings, timeout: float = 15.0) -> None:
    host, port = url_hostport(settings.clickhouse_url, 8123)
    if not await reachable(host, port, timeout):
        raise ConfigError(f"cannot reach ClickHouse at {settings.clickhouse_url} (TRILHA_CLICKHOUSE_URL): "
                          "is it running?")
