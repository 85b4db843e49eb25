"""`trilha clickhouse`: ClickHouse's own server on the ports TRILHA_CLICKHOUSE_URL and
TRILHA_CLICKHOUSE_TCP_PORT name, with its data in `<data dir>/clickhouse`."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.embedded.clickhouse_server import Endpoint, config_xml, serve
from services.netcheck import ensure_port_free, url_hostport
from services.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where ClickHouse keeps its data (default: $TRILHA_DATA_DIR/clickhouse)")


def command(args: argparse.Namespace, settings: Settings) -> int:
    _, http_port = url_hostport(settings.clickhouse_url, 8123)
    me = Endpoint(http_port, settings.clickhouse_tcp_port)
    for port, what in ((me.http_port, "HTTP interface (TRILHA_CLICKHOUSE_URL)"),
                       (me.tcp_port, "native interface (TRILHA_CLICKHOUSE_TCP_PORT)")):
        ensure_port_free("127.0.0.1", port, f"the embedded ClickHouse's {what}")
    root = Path(settings.data_dir).resolve()
    data_dir = Path(args.data_dir).resolve() if args.data_dir else root / "clickhouse"
    data_dir.mkdir(parents=True, exist_ok=True)
    return serve(data_dir, root / "run" / f"clickhouse-{me.http_port}", config_xml(me), me.http_port)
