"""The embedded ClickHouse endpoint as the rest of Trilha sees it: a real process, spoken to by
unmodified clickhouse-connect clients (sync and async) and, for protocol details, plain HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import clickhouse_connect
import lz4.frame
import pytest
import zstandard
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC


@dataclass
class Endpoint:
    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_endpoint(data_dir: Path, port: int | None = None, timeout: float = 60) -> Endpoint:
    """Start `python -m services.embedded.clickhouse_endpoint` and wait for its ready line."""
    port = port or free_port()
    log = data_dir.parent / f"{data_dir.name}-{port}.stderr"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.embedded.clickhouse_endpoint", "--data-dir", str(data_dir),
             "--port", str(port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("clickhouse endpoint listening on"):
                assert line.strip() == f"clickhouse endpoint listening on http://127.0.0.1:{port}"
                return Endpoint(proc, port, data_dir, log)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"endpoint did not start:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    running = start_endpoint(tmp_path_factory.mktemp("ch") / "data")
    yield running
    assert running.stop() == 0, running.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def client(endpoint: Endpoint) -> Iterator[Client]:
    """The sync client as configured by default: it opens a session of its own."""
    sync = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port)
    yield sync
    sync.close()


@pytest.fixture
async def aclient(endpoint: Endpoint) -> AsyncIterator[AsyncClient]:
    """The async client as services.clients builds it: no session, shared by concurrent tasks."""
    async_client = await clickhouse_connect.get_async_client(
        host="127.0.0.1", port=endpoint.port, autogenerate_session_id=False)
    yield async_client
    await async_client.close()


def table_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def http(endpoint: Endpoint, method: str, data: bytes | None = None, headers: dict | None = None,
               **params: str) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request; returns status, headers and body."""
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.request(
            method, endpoint.url + "/", params=params, data=data, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


# -- the HTTP surface ---------------------------------------------------------------------------


async def test_ping_and_root_answer_ok(endpoint: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/ping", "/"):
            async with session.get(endpoint.url + path) as resp:
                assert resp.status == 200
                assert await resp.read() == b"Ok.\n"


async def test_get_query_runs_read_only_statements_only(endpoint: Endpoint) -> None:
    status, headers, body = await http(endpoint, "GET", query="SELECT 1 + 1")
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b"2\n", "TabSeparated")
    for sql in ("CREATE TABLE nope (a UInt8) ENGINE = Memory", "INSERT INTO nope FORMAT CSV",
                "SELECT 1; DROP TABLE IF EXISTS nope"):
        status, headers, body = await http(endpoint, "GET", query=sql)
        assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "164"
        assert body.startswith(b"Code: 164. DB::Exception:")


async def test_default_format_parameter_and_format_clause(endpoint: Endpoint) -> None:
    status, headers, body = await http(endpoint, "POST", b"SELECT 1 AS x", default_format="JSONEachRow")
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b'{"x":1}\n', "JSONEachRow")
    status, headers, body = await http(endpoint, "POST", b"SELECT 2 AS x FORMAT CSVWithNames")
    assert (body, headers["X-ClickHouse-Format"]) == (b'"x"\n2\n', "CSVWithNames")
    assert headers["X-ClickHouse-Timezone"] and headers["X-ClickHouse-Query-Id"]


async def test_errors_are_clickhouse_shaped_without_traceback(endpoint: Endpoint) -> None:
    cases = [  # body, headers, expected status, expected code
        (b"SELEC 1", {}, 400, "62"),
        (b"SELECT * FROM no_such_table", {}, 404, "60"),
        (b"\x04\x22garbage", {"Content-Encoding": "lz4"}, 500, "271"),
        (b"SELECT 1", {"Content-Encoding": "snappy"}, 400, "36"),
        (b"  ", {}, 400, "62"),
        (b"SELECT throwIf(1)", {}, 500, "395"),
    ]
    for data, headers, status, code in cases:
        got_status, got_headers, body = await http(endpoint, "POST", data, headers)
        assert (got_status, got_headers["X-ClickHouse-Exception-Code"]) == (status, code), body
        assert body.startswith(f"Code: {code}. DB::Exception: ".encode()) and b"(version " in body
        assert b"Traceback" not in body
    assert "Traceback" not in endpoint.log.read_text(errors="replace")


async def test_query_parameter_plus_compressed_body_insert(endpoint: Endpoint, client: Client) -> None:
    """ClickHouse's rule: the `query` parameter, a line break, then the body (here the data)."""
    table = table_name("qp")
    client.command(f"CREATE TABLE {table} (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
    data = b"".join(f"{i},row{i}\n".encode() for i in range(1000))
    bodies = {"zstd": zstandard.ZstdCompressor().compress(data), "gzip": gzip.compress(data),
              "lz4": lz4.frame.compress(data[:5000]) + lz4.frame.compress(data[5000:]), "identity": data}
    for encoding, body in bodies.items():
        status, headers, _ = await http(endpoint, "POST", body, {"Content-Encoding": encoding},
                                        query=f"INSERT INTO {table} FORMAT CSV")
        assert status == 200, encoding
        assert '"written_rows":"1000"' in headers["X-ClickHouse-Summary"]
        assert "X-ClickHouse-Format" not in headers
    assert client.command(f"SELECT count(), sum(a) FROM {table}") == [str(4000), str(4 * 499500)]


# -- clickhouse-connect, unchanged -------------------------------------------------------------


def test_client_start_up(client: Client) -> None:
    assert client.server_version.startswith("26.")
    assert client.command("SELECT 1") == 1
    assert client.query("SELECT 1 AS x, 'a' AS y").result_rows == [(1, "a")]


async def test_async_client_start_up(aclient: AsyncClient) -> None:
    assert (await aclient.query("SELECT version()")).result_rows[0][0].startswith("26.")
    assert await aclient.command("SELECT 41 + 1") == 42


def test_syntax_error_reaches_sync_client_as_database_error(client: Client) -> None:
    with pytest.raises(DatabaseError) as caught:
        client.query("SELEC 1")
    assert caught.value.code == 62 and "62" in str(caught.value)
    assert client.command("SELECT 1") == 1  # the session survives the error


async def test_syntax_error_reaches_async_client_as_database_error(aclient: AsyncClient) -> None:
    with pytest.raises(DatabaseError) as caught:
        await aclient.command("CREATE TABLE broken (")
    assert caught.value.code == 62 and "62" in str(caught.value)


def test_command_tells_ddl_from_results(client: Client) -> None:
    table = table_name("cmd")
    summary = client.command(f"CREATE TABLE {table} (a UInt8) ENGINE = Memory")
    assert hasattr(summary, "written_rows")
    insert = client.command(f"INSERT INTO {table} VALUES (1), (2), (3)")
    assert insert.written_rows == 3
    assert client.command(f"SELECT a FROM {table} WHERE a > 5") == ""  # empty result, not a summary
    assert client.command(f"SELECT count() FROM {table}") == 3


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_typed_insert_round_trip(endpoint: Endpoint, compress: str | bool) -> None:
    sync = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port, compress=compress)
    table = table_name("typed")
    sync.command(f"""CREATE TABLE {table} (ts DateTime64(3, 'UTC'), id UUID, ip IPv6,
        kind LowCardinality(String), tags Map(String, String), ok Bool, n Nullable(Int32),
        words Array(String))
        ENGINE = MergeTree ORDER BY ts""")
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = [
        [dt.datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC), ids[0], "10.1.2.3", "read",
         {"k": "v", "ação": "sim"}, True, None, ["a", "b"]],
        [dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3))), ids[1],
         ipaddress.ip_address("2001:db8::1"), "write", {}, False, -5, []],
    ]
    summary = sync.insert(table, rows, column_names=["ts", "id", "ip", "kind", "tags", "ok", "n", "words"])
    assert summary.written_rows == 2
    got = sync.query(f"SELECT * FROM {table} ORDER BY ts").result_rows
    assert [r[0].replace(tzinfo=UTC) if r[0].tzinfo is None else r[0] for r in got] == [
        dt.datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC), dt.datetime(2024, 1, 2, 3, tzinfo=UTC)]
    assert [r[1] for r in got] == ids
    assert [str(r[2]) for r in got] == ["::ffff:a01:203", "2001:db8::1"]  # IPv4 stored IPv4-mapped
    assert [r[3:] for r in got] == [("read", {"k": "v", "ação": "sim"}, True, None, ["a", "b"]),
                                    ("write", {}, False, -5, [])]
    sync.close()


def test_large_insert_streams_in_blocks(client: Client) -> None:
    table = table_name("big")
    client.command(f"CREATE TABLE {table} (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
    summary = client.insert(table, [[i, f"value {i}"] for i in range(300_000)], column_names=["a", "s"])
    assert summary.written_rows == 300_000
    assert client.command(f"SELECT count(), uniqExact(s) FROM {table}") == ["300000", "300000"]


async def _dedup_token_case(insert, count, table: str) -> None:  # noqa: ANN001 - sync or async callables
    """Same token twice: the second is dropped; then a token-less insert must be written."""
    settings = {"insert_deduplication_token": "batch-1", "input_format_skip_unknown_fields": 1,
                "date_time_input_format": "best_effort"}
    first = b'{"id":"a","ts":"2024-01-01T10:00:00Z","extra":1}\n{"id":"b","ts":"2024-01-01T10:00:01Z"}\n'
    await insert(table, ["id", "ts"], first, settings)
    assert await count(table) == 2
    await insert(table, ["id", "ts"], b'{"id":"c","ts":"2024-01-01T10:00:02Z"}\n', settings)
    assert await count(table) == 2  # same token: deduplicated, whatever the data
    summary = await insert(table, ["id", "ts"], b'{"id":"d","ts":"2024-01-01T10:00:03Z"}\n',
                           {"date_time_input_format": "best_effort"})
    assert summary.written_rows == 1
    assert await count(table) == 3  # no token leaked from the previous requests


def _dedup_table(client: Client) -> str:
    table = table_name("dedup")
    client.command(f"""CREATE TABLE {table} (id String, ts DateTime64(3, 'UTC'))
        ENGINE = ReplacingMergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000""")
    return table


async def test_raw_insert_dedup_token_does_not_leak_async(client: Client, aclient: AsyncClient) -> None:
    async def insert(table, cols, block, settings):  # noqa: ANN001, ANN202
        return await aclient.raw_insert(table, cols, insert_block=block, fmt="JSONEachRow", settings=settings)

    async def count(table):  # noqa: ANN001, ANN202
        return await aclient.command(f"SELECT count() FROM {table}")

    await _dedup_token_case(insert, count, _dedup_table(client))


async def test_raw_insert_dedup_token_does_not_leak_sync_session(client: Client) -> None:
    """The sync client pins a session: settings applied for one request must not stay on it."""
    async def insert(table, cols, block, settings):  # noqa: ANN001, ANN202
        return client.raw_insert(table, cols, insert_block=block, fmt="JSONEachRow", settings=settings)

    async def count(table):  # noqa: ANN001, ANN202
        return client.command(f"SELECT count() FROM {table}")

    await _dedup_token_case(insert, count, _dedup_table(client))


async def test_url_settings_apply_to_one_request_only(aclient: AsyncClient, client: Client) -> None:
    default = await aclient.command("SELECT getSetting('max_block_size')")
    changed = await aclient.command("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234})
    assert changed == 1234
    for _ in range(3):  # whichever pooled connection serves it
        assert await aclient.command("SELECT getSetting('max_block_size')") == default
    assert client.command("SELECT getSetting('max_block_size')", settings={"max_block_size": 4321}) == 4321
    assert client.command("SELECT getSetting('max_block_size')") == default


async def test_sql_set_does_not_leak_from_a_pooled_connection(aclient: AsyncClient) -> None:
    default = await aclient.command("SELECT getSetting('max_threads')")
    await aclient.command("SET max_threads = 1")
    for _ in range(3):
        assert await aclient.command("SELECT getSetting('max_threads')") == default


async def test_database_parameter(endpoint: Endpoint, client: Client) -> None:
    client.command("CREATE DATABASE IF NOT EXISTS other_db")
    client.command("CREATE TABLE IF NOT EXISTS other_db.only_here (a UInt8) ENGINE = Memory")
    scoped = await clickhouse_connect.get_async_client(
        host="127.0.0.1", port=endpoint.port, database="other_db", autogenerate_session_id=False)
    try:
        assert await scoped.command("SELECT currentDatabase()") == "other_db"
        await scoped.insert("only_here", [[1], [2]], column_names=["a"])
        assert await scoped.command("SELECT count() FROM only_here") == 2
    finally:
        await scoped.close()
    status, headers, _ = await http(endpoint, "POST", b"SELECT 1", database="no_such_db")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "81")


def test_server_side_parameters(client: Client) -> None:
    sql = "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, {d:DateTime64(3)} AS d, {xs:Array(String)} AS xs"
    when = dt.datetime(2024, 5, 6, 7, 8, 9)
    result = client.query(sql, parameters={"s": "tab\there 'quoted'", "n": 41, "d": when, "xs": ["a", "b'c"]})
    assert result.result_rows == [("tab\there 'quoted'", 42, when, ["a", "b'c"])]
    many = [f"id-{i:06d}" for i in range(2000)]  # too long for the URL: sent as multipart/form-data
    assert client.command("SELECT length({ids:Array(String)})", parameters={"ids": many}) == 2000


async def test_server_side_parameters_async(aclient: AsyncClient) -> None:
    result = await aclient.query("SELECT {x:String} AS x", parameters={"x": "olá"})
    assert result.result_rows == [("olá",)]


def test_query_df_and_arrow(client: Client) -> None:
    df = client.query_df("SELECT number AS n, toString(number) AS s FROM numbers(5)")
    assert list(df.columns) == ["n", "s"] and df["n"].tolist() == [0, 1, 2, 3, 4]
    table = client.query_arrow("SELECT number AS n, toLowCardinality(toString(number)) AS s FROM numbers(3)")
    assert table.column_names == ["n", "s"] and table.num_rows == 3


def test_empty_result_keeps_column_names(client: Client) -> None:
    result = client.query("SELECT number AS n, toString(number) AS s FROM numbers(10) WHERE n > 100")
    assert result.column_names == ("n", "s") and result.result_rows == []


def test_streaming_queries(client: Client) -> None:
    with client.query_rows_stream("SELECT number FROM numbers(2000000)") as stream:
        assert sum(row[0] for row in stream) == 1999999 * 2000000 // 2
    with client.query_column_block_stream("SELECT number, toString(number) FROM numbers(1500000)") as stream:
        assert sum(len(block[0]) for block in stream) == 1_500_000
    sql = "SELECT number, number * 2 AS d FROM numbers(400000)"
    streamed = b"".join(client.raw_stream(sql, fmt="TSVWithNames", settings={"max_block_size": 10000}))
    assert streamed == client.raw_query(sql, fmt="TSVWithNames")


def test_error_in_the_middle_of_a_streamed_result(client: Client) -> None:
    with pytest.raises(Exception) as caught:  # noqa: B017 - the client's own stream error type
        with client.query_rows_stream("SELECT throwIf(number = 3000000) FROM numbers(5000000)",
                                      settings={"max_block_size": 65536}) as stream:
            for _ in stream:
                pass
    assert "395" in str(caught.value)
    assert client.command("SELECT 1") == 1


def test_max_execution_time_setting(client: Client) -> None:
    assert client.query("SELECT 1", settings={"max_execution_time": 5}).result_rows == [(1,)]
    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT count() FROM numbers(100000000000)", settings={"max_execution_time": 0.3})
    assert caught.value.code == 159


def test_replacing_merge_tree_and_materialized_view(client: Client) -> None:
    src, dst = table_name("src"), table_name("dst")
    client.command(f"""CREATE TABLE {src} (company LowCardinality(String), id String, ts DateTime64(3, 'UTC'))
        ENGINE = ReplacingMergeTree ORDER BY (company, ts, id)
        SETTINGS non_replicated_deduplication_window = 1000""")
    client.command(f"CREATE TABLE {dst} (company LowCardinality(String), id String) "
                   "ENGINE = ReplacingMergeTree ORDER BY (company, id)")
    client.command(f"CREATE MATERIALIZED VIEW {dst}_mv TO {dst} AS SELECT company, id FROM {src}")
    columns = ["company", "id", "ts"]
    client.insert(src, [["acme", "q1", dt.datetime(2024, 1, 1, tzinfo=UTC)]], column_names=columns)
    client.raw_insert(src, columns, insert_block=b'{"company":"acme","id":"q2","ts":"2024-01-02"}\n',
                      fmt="JSONEachRow")
    assert client.query(f"SELECT id FROM {dst} ORDER BY id").result_rows == [("q1",), ("q2",)]


def test_session_keeps_temporary_tables_and_set(client: Client) -> None:
    client.command("CREATE TEMPORARY TABLE IF NOT EXISTS scratch (a UInt8)")
    client.command("INSERT INTO scratch VALUES (7)")
    client.command("SET max_threads = 1")
    assert client.query("SELECT a FROM scratch").result_rows == [(7,)]
    assert client.command("SELECT getSetting('max_threads')") == 1
    client.command("SET max_threads = DEFAULT")


async def test_concurrent_use_of_one_session_is_refused(endpoint: Endpoint) -> None:
    session = f"s-{uuid.uuid4()}"
    slow = asyncio.ensure_future(http(endpoint, "POST", b"SELECT sleepEachRow(0.5) FROM numbers(3)",
                                      session_id=session, max_block_size="1"))
    await asyncio.sleep(0.5)
    status, headers, body = await http(endpoint, "POST", b"SELECT 1", session_id=session)
    assert headers["X-ClickHouse-Exception-Code"] == "373" and b"SESSION_IS_LOCKED" in body
    assert (await slow)[0] == 200


async def test_idle_session_expires(endpoint: Endpoint) -> None:
    session = f"s-{uuid.uuid4()}"
    await http(endpoint, "POST", b"CREATE TEMPORARY TABLE t (a UInt8)", session_id=session,
               session_timeout="1")
    status, _, _ = await http(endpoint, "POST", b"SELECT * FROM t", session_id=session, session_check="1",
                              session_timeout="1")  # as in ClickHouse, each request sets the timeout
    assert status == 200
    await asyncio.sleep(3)  # timeout 1 s, and the endpoint looks for idle sessions every second
    status, headers, _ = await http(endpoint, "POST", b"SELECT 1", session_id=session, session_check="1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "372")


async def test_fifty_concurrent_point_queries(aclient: AsyncClient, client: Client) -> None:
    table = table_name("pk")
    client.command(f"CREATE TABLE {table} (k UInt32, v String) ENGINE = MergeTree ORDER BY k")
    client.insert(table, [[i, f"v{i}"] for i in range(10000)], column_names=["k", "v"])
    results = await asyncio.gather(*(aclient.query(f"SELECT v FROM {table} WHERE k = {{k:UInt32}}",
                                                   parameters={"k": i * 7}) for i in range(50)))
    assert [r.result_rows for r in results] == [[(f"v{i * 7}",)] for i in range(50)]


async def test_long_query_does_not_block_ping(endpoint: Endpoint, aclient: AsyncClient) -> None:
    slow = asyncio.ensure_future(aclient.query("SELECT sleepEachRow(1) FROM numbers(2)",
                                               settings={"max_block_size": 1}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.get(endpoint.url + "/ping") as resp:
        assert await resp.read() == b"Ok.\n"
    assert time.monotonic() - started < 0.5
    assert not slow.done()
    await slow


# -- the process --------------------------------------------------------------------------------


def test_data_persists_across_restarts(tmp_path: Path) -> None:
    first = start_endpoint(tmp_path / "data")
    sync = clickhouse_connect.get_client(host="127.0.0.1", port=first.port)
    sync.command("CREATE TABLE kept (a UInt32) ENGINE = MergeTree ORDER BY a")
    sync.command("CREATE FUNCTION IF NOT EXISTS kept_double AS (x) -> x * 2")
    sync.insert("kept", [[1], [2], [3]], column_names=["a"])
    sync.close()
    assert first.stop() == 0
    assert "Traceback" not in first.log.read_text(errors="replace")
    second = start_endpoint(tmp_path / "data")
    try:
        sync = clickhouse_connect.get_client(host="127.0.0.1", port=second.port)
        assert sync.command("SELECT sum(kept_double(a)) FROM kept") == 12
        sync.close()
    finally:
        assert second.stop(signal.SIGINT) == 0


def test_port_in_use_is_one_clear_line(endpoint: Endpoint, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.embedded.clickhouse_endpoint", "--data-dir", str(tmp_path / "other"),
         "--port", str(endpoint.port)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"clickhouse endpoint: 127.0.0.1:{endpoint.port} is already in use"


def test_data_dir_in_use_is_one_clear_line(endpoint: Endpoint) -> None:
    """chDB locks its directory: a second endpoint on it fails with one line, not a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "services.embedded.clickhouse_endpoint", "--data-dir", str(endpoint.data_dir),
         "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"clickhouse endpoint: cannot open {endpoint.data_dir}")
    assert lines[0].endswith("another process already serves this data directory")
