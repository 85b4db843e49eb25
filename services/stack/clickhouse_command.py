"""`trilha clickhouse [--shard N]`: ClickHouse's own server on the ports TRILHA_CLICKHOUSE_URL and
TRILHA_CLICKHOUSE_TCP_PORT name (shard N on those + N - 1), with its data in
`<data dir>/clickhouse` (shard N > 1: `<data dir>/clickhouse-N`). With TRILHA_CLICKHOUSE_SHARDS > 1
every server gets the same `<remote_servers>`, so the servers form one cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas import cluster
from services.runtime.netcheck import ensure_port_free
from services.runtime.settings import ConfigError, Settings
from services.stack.clickhouse_auth import check_credentials
from services.stack.clickhouse_server import ServerSpec, serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where ClickHouse keeps its data (default: $TRILHA_DATA_DIR/clickhouse)")
    parser.add_argument("--shard", type=int, default=1, help="which of the TRILHA_CLICKHOUSE_SHARDS servers (1..N)")


def data_dir(settings: Settings, shard: int) -> Path:
    root = Path(settings.data_dir).resolve()
    return root / ("clickhouse" if shard == 1 else f"clickhouse-{shard}")


def command(args: argparse.Namespace, settings: Settings) -> int:
    check_credentials(settings)
    shards = cluster.endpoints(settings)
    if not 1 <= args.shard <= len(shards):
        raise ConfigError(f"--shard {args.shard}: TRILHA_CLICKHOUSE_SHARDS={len(shards)} "
                          f"makes shards 1 to {len(shards)}")
    me = shards[args.shard - 1]
    for port, what in ((me.http_port, "HTTP interface (TRILHA_CLICKHOUSE_URL)"),
                       (me.tcp_port, "native interface (TRILHA_CLICKHOUSE_TCP_PORT)")):
        ensure_port_free("127.0.0.1", port, f"the embedded ClickHouse's {what}")
    where = Path(args.data_dir).resolve() if args.data_dir else data_dir(settings, args.shard)
    where.mkdir(parents=True, exist_ok=True)
    return serve(ServerSpec(where, Path(settings.data_dir).resolve() / "run" / f"clickhouse-{me.http_port}", me,
                            settings.clickhouse_user, settings.clickhouse_password,
                            cluster.EMBEDDED_CLUSTER if len(shards) > 1 else "", shards if len(shards) > 1 else ()))
