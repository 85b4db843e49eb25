"""Faults during ingestion: the worker killed outright, ClickHouse gone for 20 seconds. Afterwards
every record is in ClickHouse, and a reader sees each exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import orjson
import psutil

from schemas.migrate_command import prepare
from services.runtime.netcheck import wait_for_port
from tests.ingest.support import counts, produce, record_values, stored_ids, wait_distinct
from tests.stack import Stack, free_port


def _exactly_once(seen: dict[str, int], expected: int) -> None:
    """What a reader sees is exact; raw rows may hold not-yet-merged duplicates, never fewer."""
    assert seen["distinct"] == expected and seen["reader"] == expected and seen["final"] == expected, seen
    assert seen["rows"] >= expected, seen


async def test_a_worker_killed_repeatedly_still_leaves_every_record_once(stack: Stack, ch) -> None:  # noqa: ANN001
    company, total = "ingest-sigkill", 60_000
    settings = replace(stack.with_topic("ingest-sigkill"), batch_max_rows=1_000, batch_max_age_s=0.2)
    values = record_values(total, company, seed=301)
    await produce(settings, values)

    kills, written = 0, 0
    stack.spawn("ingest-sigkill", "ingest", settings=settings)
    try:
        for _ in range(3):  # each life writes a few batches, then dies with most of the topic unread
            written = await wait_distinct(ch, company, written + 3_000, timeout=120)
            assert written < total * 0.75, "killed in the middle of ingestion, not after it"
            stack.stop("ingest-sigkill", signal.SIGKILL)
            kills += 1
            stack.spawn("ingest-sigkill", "ingest", settings=settings)
        await wait_distinct(ch, company, total, timeout=180)
        await asyncio.sleep(1.0)  # anything still in flight lands now, or never
    finally:
        stack.stop("ingest-sigkill")

    assert kills == 3
    _exactly_once(await counts(ch, company), total)
    assert await stored_ids(ch, company) == {orjson.loads(v)["query_id"] for v in values}


async def test_clickhouse_down_for_20_seconds_loses_nothing_and_memory_stays_bounded(stack: Stack) -> None:
    from services.runtime import clients

    company, total = "ingest-outage", 100_000
    port = free_port()
    metrics_port = free_port()
    settings = replace(stack.with_topic("ingest-outage"), clickhouse_url=f"http://127.0.0.1:{port}",
                       clickhouse_tcp_port=free_port(), clickhouse_shards=1, batch_max_rows=5_000, batch_max_age_s=0.3,
                       insert_timeout_s=5.0, metrics_port=metrics_port)
    data_dir = Path(stack.data_dir) / "ch-outage"
    _start_clickhouse(stack, settings, data_dir, port)
    await prepare(settings)
    values = record_values(total, company, seed=401)
    await produce(settings, values)  # ~115 MB of lag: far more than the worker may hold

    ch = await clients.clickhouse(settings)
    worker = stack.spawn("ingest-outage", "ingest", settings=settings)
    try:
        written = await wait_distinct(ch, company, total // 5, timeout=120)
        stack.stop("ch-outage", signal.SIGKILL)
        assert written < total * 0.7, "ClickHouse went away in the middle of ingestion, not after it"
        rss = await _sample_rss(worker.pid, seconds=20.0)
        assert worker.poll() is None, "the worker survives the outage"
        during = _metrics(metrics_port)
        assert during["trilha_ingest_paused"] == 1.0, "fetching is paused while nothing can be written"
        assert during["trilha_ingest_insert_retries_total"] > 0
        _start_clickhouse(stack, settings, data_dir, port)
        await ch.close()
        ch = await clients.clickhouse(settings)
        await wait_distinct(ch, company, total, timeout=180)
        await asyncio.sleep(1.0)
        _exactly_once(await counts(ch, company), total)
        assert await stored_ids(ch, company) == {orjson.loads(v)["query_id"] for v in values}
    finally:
        stack.stop("ingest-outage")
        stack.stop("ch-outage")
        await ch.close()

    log = stack.log("ingest-outage")
    assert "insert failed, retrying" in log and "insert succeeded after retries" in log
    print(f"worker RSS during the outage: {rss[0] / 1e6:.0f} MB at its start, {max(rss) / 1e6:.0f} MB at most")
    # Held at most: the batch being retried, one sealed batch, and fetch buffers; never the lag.
    assert max(rss) - rss[0] < 64 * 1024 * 1024, [f"{r / 1e6:.0f} MB" for r in rss]
    assert max(rss) < 300 * 1024 * 1024, f"{max(rss) / 1e6:.0f} MB"


def _start_clickhouse(stack: Stack, settings, data_dir: Path, port: int) -> None:  # noqa: ANN001
    stack.spawn("ch-outage", "clickhouse", "--data-dir", str(data_dir), settings=settings)
    if not wait_for_port("127.0.0.1", port, 60):
        raise AssertionError(f"own ClickHouse server did not start:\n{stack.log('ch-outage')[-2000:]}")


def _metrics(port: int) -> dict[str, float]:
    """The worker's /metrics, summed over labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0]
            found[name] = found.get(name, 0.0) + float(value)
    return found


async def _sample_rss(pid: int, seconds: float) -> list[int]:
    process, samples = psutil.Process(pid), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(process.memory_info().rss)
        await asyncio.sleep(0.25)
    return samples
