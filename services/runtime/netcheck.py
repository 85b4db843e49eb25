"""Network checks that turn bad configuration into one clear line instead of a traceback: parsing
HOST:PORT and URLs, a port that must be free, and dependencies (Kafka, ClickHouse) that must answer
at start-up."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

from services.runtime.settings import ConfigError, Settings


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`, or a bare host with `default_port`) as a (host, port) pair."""
    host, _, port = value.strip().rpartition(":")
    if not host:
        return value.strip() or "127.0.0.1", default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigError(f"{value!r} is not HOST:PORT") from None


def url_hostport(url: str, default_port: int) -> tuple[str, int]:
    """The host and port a URL names (`default_port` when it names none)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(f"{url!r} is not a URL such as http://127.0.0.1:8123")
    return parts.hostname, parts.port or default_port


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Fail with a clear line when `port` is taken, before a child process fails obscurely."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise ConfigError(f"port {host}:{port} for {what} is already in use: stop what uses it "
                              "or choose another port") from None


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts connections at host:port, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


async def reachable(host: str, port: int, timeout: float) -> bool:
    """Async variant of `wait_for_port`, for processes checking their dependencies at start-up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
            writer.close()
            return True
        except (OSError, TimeoutError):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.2)


async def require_kafka(settings: Settings, timeout: float = 15.0) -> None:
    """A ConfigError naming TRILHA_KAFKA_BOOTSTRAP_SERVERS unless one of the brokers answers."""
    for server in settings.kafka_bootstrap_servers.split(","):
        host, port = parse_hostport(server, 9092)
        if await reachable(host, port, timeout):
            return
    raise ConfigError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers} "
                      "(TRILHA_KAFKA_BOOTSTRAP_SERVERS): is the broker running?")


async def require_clickhouse(settings: Settings, timeout: float = 15.0) -> None:
    """A ConfigError naming TRILHA_CLICKHOUSE_URL unless ClickHouse answers."""
    host, port = url_hostport(settings.clickhouse_url, 8123)
    if not await reachable(host, port, timeout):
        raise ConfigError(f"cannot reach ClickHouse at {settings.clickhouse_url} (TRILHA_CLICKHOUSE_URL): "
                          "is it running?")
