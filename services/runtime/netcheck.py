"""Small network checks that turn bad configuration into one clear line instead of a traceback."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

from services.runtime.settings import ConfigError


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.strip().rpartition(":")
    if not host:
        return value.strip() or "127.0.0.1", default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ConfigError(f"{value!r} is not HOST:PORT") from None


def url_hostport(url: str, default_port: int) -> tuple[str, int]:
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
