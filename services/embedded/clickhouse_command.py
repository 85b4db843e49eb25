"""`trilha clickhouse`: the embedded ClickHouse endpoint on the address TRILHA_CLICKHOUSE_URL names."""

from __future__ import annotations

import argparse
import os

from services.netcheck import ensure_port_free, url_hostport
from services.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where ClickHouse keeps its data (default: $TRILHA_DATA_DIR/clickhouse)")


def command(args: argparse.Namespace, settings: Settings) -> int:
    from services.embedded.clickhouse_endpoint import serve

    host, port = url_hostport(settings.clickhouse_url, 8123)
    ensure_port_free(host, port, "the embedded ClickHouse endpoint (TRILHA_CLICKHOUSE_URL)")
    data_dir = args.data_dir or os.path.join(settings.data_dir, "clickhouse")
    os.makedirs(data_dir, exist_ok=True)
    serve(host, port, data_dir)
    return 0
