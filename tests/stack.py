"""The stack the integration tests run against, started once per session.

By default: the embedded broker and ClickHouse's own server as real child processes on free ports.
With TRILHA_TEST_BACKEND=containers: real Kafka and ClickHouse through testcontainers (needs a
Docker engine). Tests only see `Stack`: addresses and the Settings every process would get.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from schemas.migrate_command import prepare
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from tests.native import native_hello

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports (embedded shards, metrics ports of `trilha up`)."""
    while True:
        base = free_port()
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue


def shards_under_test() -> int:
    """ClickHouse servers of the test stack: TRILHA_TEST_CLICKHOUSE_SHARDS (1 by default; `make test-shards`: 2)."""
    return int(os.environ.get("TRILHA_TEST_CLICKHOUSE_SHARDS", "1"))


def clickhouse_ports(shards: int) -> tuple[int, int]:
    """Consecutive free HTTP ports, then as many native ones right after them."""
    base = free_ports_in_a_row(2 * shards)
    return base, base + shards


@dataclass
class Stack:
    settings: Settings
    data_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.to_env(), "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, *args: str, settings: Settings | None = None) -> subprocess.Popen[bytes]:
        """Start `trilha <args>` as a real process, logging to data_dir/<name>.log."""
        env = {**os.environ, **(settings or self.settings).to_env(), "PYTHONUNBUFFERED": "1"}
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.data_dir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def with_topic(self, topic: str, group: str | None = None) -> Settings:
        """Settings for a test that wants its own topic (and consumer group) on the shared stack."""
        return replace(self.settings, kafka_topic=topic, kafka_dlq_topic=f"{topic}.dlq",
                       kafka_group=group or f"{topic}-group")


def _embedded(tmp: Path) -> Iterator[Stack]:
    kafka_port = free_port()
    settings = Settings.from_env({}, kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
                                 clickhouse_shards=shards_under_test(), clickhouse_user="trilha",
                                 clickhouse_password="test-password-not-for-production", query_port=free_port(),
                                 data_dir=str(tmp), kafka_idempotence=False,
                                 cursor_secret="test-secret-not-for-production", batch_max_age_s=0.3)
    stack = Stack(settings, tmp)
    try:
        stack.spawn("broker", "broker")
        stack.settings = _start_clickhouse(stack)
        if not wait_for_port("127.0.0.1", kafka_port, 60):
            raise RuntimeError(f"embedded broker did not start:\n{stack.log('broker')}")
        asyncio.run(prepare(stack.settings))
        yield stack
    finally:
        for name in list(stack.procs)[::-1]:
            stack.stop(name)


def _start_clickhouse(stack: Stack, attempts: int = 3) -> Settings:
    """The stack's ClickHouse servers on a block of free ports. The machine is shared: a port found
    free can be taken before a server binds it, and then that server stops; start again elsewhere."""
    shards, failed = stack.settings.clickhouse_shards, ""
    for _ in range(attempts):
        http, tcp = clickhouse_ports(shards)
        settings = replace(stack.settings, clickhouse_url=f"http://127.0.0.1:{http}", clickhouse_tcp_port=tcp)
        names = ["clickhouse" if n == 1 else f"clickhouse-{n}" for n in range(1, shards + 1)]
        for n, name in enumerate(names, start=1):
            stack.spawn(name, "clickhouse", "--shard", str(n), settings=settings)
        if all(_serving(stack, name, settings, n) for n, name in enumerate(names)):
            return settings
        failed = "\n".join(stack.log(name)[-1500:] for name in names)
        for name in names:
            stack.stop(name)
    raise RuntimeError(f"embedded ClickHouse did not start:\n{failed}")


def _serving(stack: Stack, name: str, settings: Settings, n: int) -> bool:
    """Its HTTP port answers, and its native port answers as ClickHouse to our user (not as
    something else that took the port)."""
    http, tcp = int(settings.clickhouse_url.rsplit(":", 1)[1]) + n, settings.clickhouse_tcp_port + n
    if not (wait_for_port("127.0.0.1", http, 60) and wait_for_port("127.0.0.1", tcp, 30)):
        return False
    try:
        kind, server, *_ = native_hello(tcp, settings.clickhouse_user, settings.clickhouse_password)
    except (OSError, IndexError):  # refused, or closed before answering
        return False
    return (kind, server) == (0, "ClickHouse")


def _containers(tmp: Path) -> Iterator[Stack]:
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer() as kafka, ClickHouseContainer() as ch:
        url = f"http://{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"
        settings = Settings.from_env({}, kafka_bootstrap_servers=kafka.get_bootstrap_server(),
                                     clickhouse_url=url, clickhouse_user=ch.username,
                                     clickhouse_password=ch.password, clickhouse_database=ch.dbname,
                                     query_port=free_port(), data_dir=str(tmp),
                                     cursor_secret="test-secret-not-for-production", batch_max_age_s=0.3)
        asyncio.run(prepare(settings))
        stack = Stack(settings, tmp)
        try:
            yield stack
        finally:
            for name in list(stack.procs)[::-1]:
                stack.stop(name)


@contextmanager
def running_stack(tmp: Path) -> Iterator[Stack]:
    backend = os.environ.get("TRILHA_TEST_BACKEND", "embedded")
    yield from (_containers(tmp) if backend == "containers" else _embedded(tmp))


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
