"""`trilha clickhouse` is ClickHouse's own server (from the chdb-core wheel), and it does what the
product relies on: its HTTP and native interfaces answer as ClickHouse, insert de-duplication
tokens, per-request settings, the error codes ingest's writer sorts into retry or bisect, an error
in the middle of a streamed result, and a clean stop that keeps the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from ingest.writer import insert_settings, is_data_error
from services.runtime.netcheck import wait_for_port
from tests.native import native_hello
from tests.stack import ROOT, Stack, free_port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    http_port: int
    tcp_port: int
    data_dir: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def client(self) -> Client:
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.http_port, username=USER, password=PASSWORD)


USER, PASSWORD = "trilha", "a-test-password"


def _env(data_dir: Path, http_port: int, tcp_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRILHA_")}
    return {**env, "TRILHA_DATA_DIR": str(data_dir), "TRILHA_CLICKHOUSE_URL": f"http://127.0.0.1:{http_port}",
            "TRILHA_CLICKHOUSE_TCP_PORT": str(tcp_port), "TRILHA_CLICKHOUSE_USER": USER,
            "TRILHA_CLICKHOUSE_PASSWORD": PASSWORD, **extra}


def start_server(data_dir: Path, wait: bool = True) -> Server:
    """`trilha clickhouse` as its own process, as `trilha up` runs it."""
    http_port, tcp_port = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"clickhouse-{http_port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "clickhouse"], cwd=ROOT,
                                env=_env(data_dir, http_port, tcp_port), stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, http_port, tcp_port, data_dir, log)
    if wait and not wait_for_port("127.0.0.1", http_port, 90):
        server.stop(signal.SIGKILL)
        raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}")
    return server


# -- the interfaces, on the session's stack ------------------------------------------------------


def test_native_tcp_port_answers_as_clickhouse(stack: Stack) -> None:
    s = stack.settings
    kind, name, major, _minor = native_hello(s.clickhouse_tcp_port, s.clickhouse_user, s.clickhouse_password)
    assert (kind, name, major) == (0, "ClickHouse", 26)


def test_http_port_serves_clickhouse_play_page_and_tab_separated_by_default(stack: Stack) -> None:
    base = stack.settings.clickhouse_url
    with urllib.request.urlopen(f"{base}/play", timeout=10) as page:
        assert b"ClickHouse Query" in page.read()
    s = stack.settings
    login = {"X-ClickHouse-User": s.clickhouse_user, "X-ClickHouse-Key": s.clickhouse_password}
    request = urllib.request.Request(f"{base}/?query=SELECT%201%2C%20%27a%27", headers=login)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["X-ClickHouse-Format"] == "TabSeparated"
        assert answer.read() == b"1\ta\n"


@pytest.mark.parametrize("login", [{}, {"user": "default"}, {"user": "default", "password": "x"},
                                   {"user": "trilha"}, {"user": "trilha", "password": "wrong"}],
                         ids=["nobody", "default", "default-with-password", "no-password", "wrong-password"])
def test_a_request_without_the_right_credentials_is_refused(stack: Stack, login: dict[str, str]) -> None:
    """The embedded server is password-protected on both interfaces; its in-process `default` user
    (which starts the servers) lets nobody in from the network."""
    query = urllib.parse.urlencode({"query": "SELECT currentUser()", **login})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.settings.clickhouse_url}/?{query}", timeout=10)
    assert refused.value.code in (401, 403), refused.value.read()[:300]
    kind, name, code, _ = native_hello(stack.settings.clickhouse_tcp_port, login.get("user", ""),
                                       login.get("password", ""))
    assert kind == 2 and code in (194, 516), (name, code)


async def test_the_server_listens_on_loopback_only(stack: Stack, ch: AsyncClient) -> None:
    rows = (await ch.query("SELECT name, value FROM system.server_settings WHERE name IN "
                           "('listen_host', 'keep_alive_timeout')")).result_rows
    assert dict(rows).get("keep_alive_timeout") == "2"
    config = next(Path(stack.data_dir, "run").glob("clickhouse-*/config.xml")).read_text()
    assert "<listen_host>127.0.0.1</listen_host>" in config and config.count("<listen_host>") == 1


async def _dedup_table(ch: AsyncClient) -> str:
    table = f"dedup_{uuid.uuid4().hex[:8]}"
    await ch.command(f"CREATE TABLE {table} (id String, ts DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree "
                     "ORDER BY id SETTINGS non_replicated_deduplication_window = 1000")
    return table


async def test_insert_deduplication_token_drops_a_repeat_and_does_not_leak(ch: AsyncClient) -> None:
    table = await _dedup_table(ch)
    settings = {"insert_deduplication_token": "batch-1", "date_time_input_format": "best_effort"}
    first = b'{"id":"a","ts":"2024-01-01T10:00:00Z"}\n{"id":"b","ts":"2024-01-01T10:00:01Z"}\n'
    await ch.raw_insert(table, ["id", "ts"], first, settings=settings, fmt="JSONEachRow")
    await ch.raw_insert(table, ["id", "ts"], b'{"id":"c","ts":"2024-01-01T10:00:02Z"}\n', settings=settings,
                        fmt="JSONEachRow")
    assert await ch.command(f"SELECT count() FROM {table}") == 2  # same token: dropped, whatever the data
    await ch.raw_insert(table, ["id", "ts"], b'{"id":"d","ts":"2024-01-01T10:00:03Z"}\n', fmt="JSONEachRow",
                        settings={"date_time_input_format": "best_effort"})
    assert await ch.command(f"SELECT count() FROM {table}") == 3  # no token left behind


async def test_settings_apply_to_one_request_only(ch: AsyncClient) -> None:
    default = await ch.command("SELECT getSetting('max_block_size')")
    assert await ch.command("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}) == 1234
    for _ in range(3):
        assert await ch.command("SELECT getSetting('max_block_size')") == default


async def test_error_codes_sort_data_errors_from_server_errors(ch: AsyncClient) -> None:
    """ingest/writer.py bisects a batch on data errors and retries anything else: check the codes
    the real server gives for both kinds."""
    table = await _dedup_table(ch)
    data_errors = [b'{"id":"a","ts":"not a time"}\n', b'{"id":"a","ts":"2024-01-01"}\n{"id":"a","ts":"x"}\n',
                   b'{"id":"a","ts":"2024-01-01"\n']
    for body in data_errors:
        with pytest.raises(DatabaseError) as caught:
            await ch.raw_insert(table, ["id", "ts"], body, fmt="JSONEachRow", settings=insert_settings(100))
        assert is_data_error(caught.value), str(caught.value)[:300]
    with pytest.raises(DatabaseError) as missing:
        await ch.raw_insert("no_such_table", ["id"], b'{"id":"a"}\n', fmt="JSONEachRow", settings=insert_settings(100))
    assert missing.value.code == 60 and not is_data_error(missing.value)
    with pytest.raises(DatabaseError) as slow:
        await ch.query("SELECT count() FROM numbers(100000000000)", settings={"max_execution_time": 0.3})
    assert slow.value.code == 159 and not is_data_error(slow.value)


def test_an_error_in_the_middle_of_a_streamed_result_reaches_the_client(stack: Stack) -> None:
    s = stack.settings
    client = clickhouse_connect.get_client(host="127.0.0.1", port=int(s.clickhouse_url.rsplit(":", 1)[1]),
                                           username=s.clickhouse_user, password=s.clickhouse_password)
    try:
        with pytest.raises(Exception) as caught:  # noqa: B017 - the client's own stream error type
            with client.query_rows_stream("SELECT throwIf(number = 3000000) FROM numbers(5000000)",
                                          settings={"max_block_size": 65536}) as stream:
                for _ in stream:
                    pass
        assert "395" in str(caught.value)
        assert client.command("SELECT 1") == 1
    finally:
        client.close()


# -- the process ---------------------------------------------------------------------------------


def test_sigterm_stops_cleanly_and_data_and_dedup_survive_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path / "data")
    client = first.client()
    client.command("CREATE TABLE kept (a UInt32) ENGINE = MergeTree ORDER BY a "
                   "SETTINGS non_replicated_deduplication_window = 100")
    client.command("CREATE FUNCTION IF NOT EXISTS kept_double AS (x) -> x * 2")
    client.raw_insert("kept", ["a"], b"1\n2\n3\n", fmt="TSV", settings={"insert_deduplication_token": "t1"})
    client.close()
    assert first.stop() == 0, first.log.read_text(errors="replace")
    second = start_server(tmp_path / "data")
    try:
        client = second.client()
        client.raw_insert("kept", ["a"], b"1\n2\n3\n", fmt="TSV", settings={"insert_deduplication_token": "t1"})
        assert client.command("SELECT sum(kept_double(a)) FROM kept") == 12
        client.close()
    finally:
        assert second.stop(signal.SIGINT) == 0, second.log.read_text(errors="replace")


def test_a_data_dir_in_use_ends_the_second_server_with_an_error(tmp_path: Path) -> None:
    first = start_server(tmp_path / "data")
    try:
        second = start_server(tmp_path / "data", wait=False)
        assert second.proc.wait(timeout=90) == 1
        log = second.log.read_text(errors="replace")
        assert "Another server instance in same directory is already running" in log
        assert "clickhouse: the server stopped on its own" in log and "Traceback" not in log
    finally:
        assert first.stop() == 0


def _trilha_clickhouse(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`trilha clickhouse` expected to refuse to start: its exit status and what it said."""
    return subprocess.run([sys.executable, "-m", "services.cli", "clickhouse"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_embedded_server_refuses_to_start_without_a_password_or_as_default(tmp_path: Path) -> None:
    for extra, named in (({"TRILHA_CLICKHOUSE_PASSWORD": ""}, "TRILHA_CLICKHOUSE_PASSWORD"),
                         ({"TRILHA_CLICKHOUSE_USER": "default"}, "TRILHA_CLICKHOUSE_USER")):
        result = _trilha_clickhouse(_env(tmp_path, free_port(), free_port(), **extra))
        assert result.returncode == 2 and result.stderr.startswith(f"trilha: error: {named}"), result.stderr


def test_a_port_in_use_is_one_clear_line(stack: Stack, tmp_path: Path) -> None:
    result = _trilha_clickhouse(_env(tmp_path, free_port(), stack.settings.clickhouse_tcp_port))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"trilha: error: port 127.0.0.1:{stack.settings.clickhouse_tcp_port} for the embedded ClickHouse's native "
        "interface (TRILHA_CLICKHOUSE_TCP_PORT) is already in use: stop what uses it or choose another port"]

