"""`trilha up`: the whole stack on one machine, each component its own OS process.

Start order follows dependencies (broker and ClickHouse, then migrations and topics, then
ingest, query, scheduler and the demo traffic); a child that dies is restarted with backoff;
stop order is the reverse, so ingest flushes and commits while ClickHouse and the broker are
still up. Children get SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from schemas import cluster
from schemas.migrate_command import prepare
from services.runtime.clients import ensure_topics
from services.runtime.netcheck import ensure_port_free, parse_hostport, wait_for_port
from services.runtime.procs import EXIT_DO_NOT_RESTART, die_with_parent
from services.runtime.settings import ConfigError, Settings
from services.stack.clickhouse_auth import EMBEDDED_USER, SECRET_FILE
from services.stack.welcome import announce as welcome

_STOP_GRACE_S = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data, pid files and logs (default $TRILHA_DATA_DIR or ./var)")
    parser.add_argument("--demo", action="store_true", help="also publish demo traffic so records arrive")
    parser.add_argument("--demo-rate", type=int, default=50, help="records/s of the demo traffic")
    parser.add_argument("--ingest-workers", type=int, default=1, help="ingest processes in the consumer group")
    parser.add_argument("--query-port", type=int, help="overrides TRILHA_QUERY_PORT")
    parser.add_argument("--kafka", help="overrides TRILHA_KAFKA_BOOTSTRAP_SERVERS (embedded broker address)")
    parser.add_argument("--clickhouse-url", help="overrides TRILHA_CLICKHOUSE_URL (embedded server's HTTP address)")
    parser.add_argument("--clickhouse-shards", type=int,
                        help="overrides TRILHA_CLICKHOUSE_SHARDS: ClickHouse servers forming one sharded cluster")
    parser.add_argument("--no-scheduler", action="store_true", help="do not start the report scheduler")


@dataclass
class Child:
    """One supervised process: how to start it, and its restart history."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the settings every child gets
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started: float = field(default=0.0)
    held: bool = False  # exited with EXIT_DO_NOT_RESTART: left stopped until someone looks


class Supervisor:
    def __init__(self, settings: Settings, run_dir: Path, log_dir: Path) -> None:
        self.settings, self.run_dir, self.log_dir = settings, run_dir, log_dir
        self.children: list[Child] = []
        self.stopping = False
        self.topics_missing = False

    def spawn(self, child: Child) -> None:
        env = {**os.environ, **self.settings.to_env(), **child.env, "PYTHONUNBUFFERED": "1"}
        log = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.proc = subprocess.Popen(child.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=die_with_parent)
        log.close()
        child.started = time.monotonic()
        (self.run_dir / f"{child.name}.pid").write_text(f"{child.proc.pid}\n")
        if child not in self.children:
            self.children.append(child)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        child = Child(name, [sys.executable, "-m", "services.cli", *args], env=env or {})
        self.spawn(child)
        return child

    def watch_once(self) -> None:
        """Restart children that died, with exponential backoff capped at 30 s."""
        now = time.monotonic()
        for child in self.children:
            if self.stopping or child.proc is None or child.proc.poll() is None or child.held:
                continue
            if child.proc.returncode == EXIT_DO_NOT_RESTART:
                child.held = True
                print(f"trilha: {child.name} stopped on purpose (exit {EXIT_DO_NOT_RESTART}); not restarting it: "
                      f"see {self.log_dir / (child.name + '.log')}", flush=True)
                continue
            if child.next_start == 0.0:
                healthy = now - child.started > 60
                child.restarts = 0 if healthy else child.restarts + 1
                delay = min(30.0, 0.5 * 2 ** child.restarts)
                child.next_start = now + delay
                print(f"trilha: {child.name} exited with {child.proc.returncode}; restarting in {delay:.1f}s",
                      flush=True)
            elif now >= child.next_start:
                child.next_start = 0.0
                self.spawn(child)
                self.topics_missing |= child.name == "broker"
        if self.topics_missing and not self.stopping:
            self.restore_topics()

    def restore_topics(self) -> None:
        """The embedded broker keeps everything in memory: a restarted one must get its topics back
        before producers send, or it acknowledges records for a topic it no longer has and drops them.
        Tried on every tick until it works; a failure here must never take the supervisor down."""
        s = self.settings
        if not wait_for_port(*parse_hostport(s.kafka_bootstrap_servers.split(",")[0], 9092), 0.2):
            return
        try:
            asyncio.run(asyncio.wait_for(ensure_topics(s, s.kafka_topic, s.kafka_dlq_topic), timeout=10))
        except Exception as exc:  # noqa: BLE001 - the broker may still be starting; next tick retries
            print(f"trilha: topics not restored yet ({type(exc).__name__}); retrying", flush=True)
            return
        self.topics_missing = False

    def stop_all(self) -> None:
        """SIGTERM in reverse start order, waiting for each; SIGKILL what outlives the grace."""
        self.stopping = True
        for child in reversed(self.children):
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:  # a clean stop is 0: anything else is worth a look at its log
                print(f"trilha: {child.name} stopped with exit status {proc.returncode}", flush=True)
        for child in self.children:
            (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)


def _kept_secret(path: Path) -> str:
    """A random secret made once per data dir and kept across restarts (readable by this user only)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _own_secrets(settings: Settings, data_dir: Path) -> Settings:
    """The cursor key shared by all query processes, and the embedded ClickHouse's login: its
    in-process session owns `default`, so clients log in as another user (trilha unless
    TRILHA_CLICKHOUSE_USER names one) with TRILHA_CLICKHOUSE_PASSWORD or a kept random password."""
    user = settings.clickhouse_user if settings.clickhouse_user != "default" else EMBEDDED_USER
    return replace(settings, cursor_secret=settings.cursor_secret or _kept_secret(data_dir / "cursor.secret"),
                   clickhouse_user=user,
                   clickhouse_password=settings.clickhouse_password or _kept_secret(data_dir / SECRET_FILE))


def _check_ports(settings: Settings) -> None:
    ensure_port_free(*parse_hostport(settings.kafka_bootstrap_servers.split(",")[0], 9092),
                     "the embedded Kafka broker (TRILHA_KAFKA_BOOTSTRAP_SERVERS)")
    for shard in cluster.endpoints(settings):
        ensure_port_free("127.0.0.1", shard.http_port,
                         "the embedded ClickHouse's HTTP interface (TRILHA_CLICKHOUSE_URL)")
        ensure_port_free("127.0.0.1", shard.tcp_port,
                         "the embedded ClickHouse's native interface (TRILHA_CLICKHOUSE_TCP_PORT)")
    ensure_port_free(settings.query_host, settings.query_port, "the query service (TRILHA_QUERY_PORT)")


def _wait_ready(sup: Supervisor, child: Child, host: str, port: int, timeout: float) -> None:
    if not wait_for_port(host, port, timeout) or (child.proc and child.proc.poll() is not None):
        log = sup.log_dir / f"{child.name}.log"
        raise ConfigError(f"{child.name} did not come up on {host}:{port} within {timeout:.0f}s (see {log})")


def command(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = Path(args.data_dir or settings.data_dir).resolve()
    settings = replace(settings, data_dir=str(data_dir), query_port=args.query_port or settings.query_port,
                       kafka_bootstrap_servers=args.kafka or settings.kafka_bootstrap_servers,
                       clickhouse_url=args.clickhouse_url or settings.clickhouse_url,
                       clickhouse_shards=args.clickhouse_shards or settings.clickhouse_shards,
                       kafka_idempotence=False)  # Tansu's memory engine has no idempotent producers
    run_dir, log_dir = data_dir / "run", data_dir / "log"
    for folder in (run_dir, log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    settings = _own_secrets(settings, data_dir)
    _check_ports(settings)
    sup = Supervisor(settings, run_dir, log_dir)
    stop = _install_signal_handlers()
    try:
        _start_stack(sup, args)
        _announce(settings, args)
        while not stop.is_set():
            sup.watch_once()
            stop.wait(0.5)
    finally:
        sup.stop_all()
    print("trilha: stopped", flush=True)
    return 0


class _StopFlag:
    def __init__(self) -> None:
        self.flag = False

    def set(self, *_: object) -> None:
        self.flag = True

    def is_set(self) -> bool:
        return self.flag

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


def _install_signal_handlers() -> _StopFlag:
    stop = _StopFlag()
    signal.signal(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, stop.set)
    return stop


def _start_stack(sup: Supervisor, args: argparse.Namespace) -> None:
    s = sup.settings
    broker = sup.start("broker", "broker")
    shards = cluster.endpoints(s)
    servers = [sup.start(f"clickhouse-{n}" if len(shards) > 1 else "clickhouse", "clickhouse", "--shard", str(n))
               for n in range(1, len(shards) + 1)]
    _wait_ready(sup, broker, *parse_hostport(s.kafka_bootstrap_servers.split(",")[0], 9092), 30)
    for server, shard in zip(servers, shards, strict=True):
        _wait_ready(sup, server, "127.0.0.1", shard.http_port, 60)
    asyncio.run(prepare(s))
    if s.proofs:  # before ingest, so it stops after ingest: its last round covers ingest's last batch
        sup.start("checkpoint", "checkpoint")
    workers, scheduler = _metrics_ports(s.metrics_port, args.ingest_workers)
    for n, port in enumerate(workers):
        sup.start(f"ingest-{n + 1}" if len(workers) > 1 else "ingest", "ingest", env={"TRILHA_METRICS_PORT": port})
    query = sup.start("query", "query")
    if not args.no_scheduler:
        sup.start("scheduler", "scheduler", env={"TRILHA_METRICS_PORT": scheduler})
    _wait_ready(sup, query, s.query_host, s.query_port, 60)
    if args.demo:
        sup.start("demo", "loadgen", "--rate", str(args.demo_rate), "--duration", "0", "--quiet")


def _metrics_ports(base: int, ingest_workers: int) -> tuple[list[str], str]:
    """Each process that serves /metrics needs a port of its own: the ingest workers take
    TRILHA_METRICS_PORT, +1, ... in order, and the scheduler the next one (0 leaves them all off)."""
    count = max(1, ingest_workers)
    ports = [str(base + n if base else 0) for n in range(count + 1)]
    return ports[:count], ports[count]


def _announce(s: Settings, args: argparse.Namespace) -> None:
    print(f"kafka       {s.kafka_bootstrap_servers} (embedded Tansu broker, in memory)", flush=True)
    shards = cluster.endpoints(s)
    if len(shards) == 1:
        print(f"clickhouse  {s.clickhouse_url}, native 127.0.0.1:{s.clickhouse_tcp_port} (ClickHouse's own server, "
              f"data in {s.data_dir}/clickhouse)")
    else:
        print(f"clickhouse  {s.clickhouse_url} ({len(shards)} shards of ClickHouse's own server: HTTP ports "
              f"{shards[0].http_port}-{shards[-1].http_port}, native {shards[0].tcp_port}-{shards[-1].tcp_port}, "
              f"data in {s.data_dir}/clickhouse, clickhouse-2, ...)")
    print(f"query       http://{s.query_host}:{s.query_port} (console at /, health at /healthz)")
    print(f"logs        {s.data_dir}/log, pid files in {s.data_dir}/run")
    if s.metrics_port:
        workers, scheduler = _metrics_ports(s.metrics_port, args.ingest_workers)
        span = f"{workers[0]}-{workers[-1]}" if len(workers) > 1 else workers[0]
        print(f"metrics     ingest on port {span}, scheduler on {scheduler} (/metrics)")
    welcome(s, args.demo)  # console URL, demo companies, a ready token (services/stack/welcome.py)
    demo = f", demo traffic at {args.demo_rate} records/s" if args.demo else ""
    print(f"trilha is ready{demo}. Ctrl-C stops everything.", flush=True)
