"""`trilha up` keeps the stack running, restarts what dies, and leaves nothing behind when stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import ROOT, clickhouse_ports, free_port, free_ports_in_a_row, shards_under_test, wait_until

READY = "trilha is ready"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRILHA_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int, dict[str, str]]]:
    """`trilha up` with demo traffic, two ingest workers and /metrics on (3 ports from TRILHA_METRICS_PORT)."""
    query_port, (ch_port, tcp_port) = free_port(), clickhouse_ports(shards_under_test())
    env = _env(TRILHA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
               TRILHA_CLICKHOUSE_URL=f"http://127.0.0.1:{ch_port}", TRILHA_QUERY_PORT=str(query_port),
               TRILHA_CLICKHOUSE_TCP_PORT=str(tcp_port), TRILHA_CLICKHOUSE_SHARDS=str(shards_under_test()),
               TRILHA_METRICS_PORT=str(free_ports_in_a_row(3)))
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--data-dir", str(tmp_path), "--demo",
                             "--ingest-workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if READY in line:
            break
    assert any(READY in line for line in lines), "".join(lines)
    try:
        yield proc, tmp_path, query_port, env
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pid(data_dir: Path, component: str) -> int:
    return int((data_dir / "run" / f"{component}.pid").read_text())


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _topics(env: dict[str, str]) -> set[str]:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def listing() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=env["TRILHA_KAFKA_BOOTSTRAP_SERVERS"])
        try:
            await admin.start()
            return set(await admin.list_topics())
        except Exception:  # noqa: BLE001 - not up yet
            return set()
        finally:
            await admin.close()

    return asyncio.run(listing())


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_a_killed_child_is_restarted_and_sigterm_leaves_no_process(up) -> None:  # noqa: ANN001
    proc, data_dir, query_port, proc_env = up
    shards = shards_under_test()
    servers = ["clickhouse"] if shards == 1 else [f"clickhouse-{n}" for n in range(1, shards + 1)]
    components = ["broker", *servers, "checkpoint", "ingest-1", "ingest-2", "query", "scheduler", "demo"]
    pids = {name: _pid(data_dir, name) for name in components}
    assert all(_alive(pid) for pid in pids.values())
    assert _healthy(query_port)
    base = int(proc_env["TRILHA_METRICS_PORT"])  # each worker and the scheduler on a port of its own
    wait_until(lambda: all("trilha_ingest_records_in_total" in _metrics(base + n) for n in (0, 1))
               and "trilha_report_runs_total" in _metrics(base + 2), timeout=60,
               what="both ingest workers and the scheduler to serve /metrics")

    os.kill(pids["query"], signal.SIGKILL)
    wait_until(lambda: _pid(data_dir, "query") != pids["query"] and _healthy(query_port), timeout=60,
               what="the query service to be restarted")
    pids["query"] = _pid(data_dir, "query")

    wait_until(lambda: _stored_calls(proc_env, data_dir) > 0, timeout=60, what="demo records to reach ClickHouse")
    before = _stored_calls(proc_env, data_dir)
    victim = servers[-1]  # with shards: one that is not the entry point, so ingest must wait for it
    os.kill(pids[victim], signal.SIGKILL)
    wait_until(lambda: _pid(data_dir, victim) != pids[victim]
               and _stored_calls(proc_env, data_dir) > before,
               timeout=90, what="ClickHouse to be restarted with its data and ingestion to go on")
    pids[victim] = _pid(data_dir, victim)

    os.kill(pids["broker"], signal.SIGKILL)
    wait_until(lambda: _pid(data_dir, "broker") != pids["broker"], timeout=60, what="the broker to be restarted")
    pids["broker"] = _pid(data_dir, "broker")
    wait_until(lambda: {"api-calls", "api-calls.dlq"} <= _topics(proc_env), timeout=60,
               what="the restarted broker to have its topics again")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    said = proc.stdout.read() if proc.stdout else ""
    assert not re.search(r"trilha: clickhouse[-0-9]* stopped with exit status", said), said
    assert [name for name, pid in pids.items() if _alive(pid)] == []
    assert not list((data_dir / "run").glob("*.pid"))


def _stored_calls(env: dict[str, str], data_dir: Path) -> int:
    """Records in ClickHouse, or -1 while it does not answer; logged in as `trilha up` made us."""
    query = urllib.parse.urlencode({"query": "SELECT count() FROM calls"})
    login = {"X-ClickHouse-User": "trilha", "X-ClickHouse-Key": (data_dir / "clickhouse.secret").read_text().strip()}
    request = urllib.request.Request(f"{env['TRILHA_CLICKHOUSE_URL']}/?{query}", headers=login)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.read())
    except (OSError, ValueError):
        return -1


def _run_trilha(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("trilha: error: "), result.stderr
    return lines[0]


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = _env(TRILHA_QUERY_PORT=str(port), TRILHA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
                   TRILHA_CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}",
                   TRILHA_CLICKHOUSE_TCP_PORT=str(free_port()))
        line = _one_clear_line(_run_trilha("up", "--data-dir", str(tmp_path), env=env))
    assert f"127.0.0.1:{port}" in line and "already in use" in line


def test_unreachable_engines_are_one_clear_line() -> None:
    env = _env(TRILHA_CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}",
               TRILHA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    line = _one_clear_line(_run_trilha("migrate", env=env))
    assert "cannot reach ClickHouse" in line and "TRILHA_CLICKHOUSE_URL" in line


def test_a_malformed_setting_is_one_clear_line() -> None:
    line = _one_clear_line(_run_trilha("migrate", env=_env(TRILHA_QUERY_PORT="eighty")))
    assert "TRILHA_QUERY_PORT" in line and "eighty" in line


def test_a_sigkilled_broker_command_takes_its_tansu_process_with_it() -> None:
    port = free_port()
    env = _env(TRILHA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    wrapper = subprocess.Popen([sys.executable, "-m", "services.cli", "broker"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _children(wrapper.pid), timeout=30, what="trilha broker to start tansu")
        (tansu,) = _children(wrapper.pid)
        wrapper.kill()
        wrapper.wait()
        wait_until(lambda: not _alive(tansu), timeout=10, what="tansu to stop with its parent")
    finally:
        if wrapper.poll() is None:
            wrapper.kill()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
