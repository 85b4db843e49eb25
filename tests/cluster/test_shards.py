"""A sharded cluster on one machine (two `trilha clickhouse --shard N` servers of its own, whatever
the session's stack is): where rows land, a retried batch after one shard took its part, a shard
down (a 503 naming it, never a partial answer), and a shard killed during ingestion."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition
from clickhouse_connect.driver.asyncclient import AsyncClient

from ingest.batcher import Batcher
from ingest.decode import Decoder
from ingest.metrics import IngestMetrics
from ingest.writer import Writer, batch_token, insert_settings
from query.events import sql as events_sql
from schemas.migrate_command import prepare
from services.runtime import clients, logs
from services.runtime.netcheck import wait_for_port
from tests.ingest.messages import message
from tests.ingest.support import counts, produce, record_values, stored_ids, wait_distinct
from tests.query.support import bearer, create_token, query_service
from tests.stack import Stack, clickhouse_ports

SHARDS = 2


class Cluster:
    """Two ClickHouse servers forming one cluster, next to the session's broker."""

    def __init__(self, stack: Stack, root: Path) -> None:
        http, tcp = clickhouse_ports(SHARDS)
        settings = replace(stack.settings, clickhouse_url=f"http://127.0.0.1:{http}", clickhouse_tcp_port=tcp,
                           clickhouse_shards=SHARDS, data_dir=str(root))
        self.stack, self.http = Stack(settings, root), http

    def start(self, shard: int) -> None:
        name = f"shard-{shard}"
        self.stack.spawn(name, "clickhouse", "--shard", str(shard),
                         "--data-dir", str(self.stack.data_dir / f"shard-{shard}"))
        if not wait_for_port("127.0.0.1", self.http + shard - 1, 90):
            raise AssertionError(f"{name} did not start:\n{self.stack.log(name)[-2000:]}")

    def stop(self, shard: int, sig: int = signal.SIGTERM) -> int | None:
        return self.stack.stop(f"shard-{shard}", sig)

    async def shard_client(self, shard: int) -> AsyncClient:
        url = f"http://127.0.0.1:{self.http + shard - 1}"
        return await clients.clickhouse(replace(self.stack.settings, clickhouse_url=url))


@pytest.fixture(scope="module")
def cluster(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(stack, tmp_path_factory.mktemp("cluster"))
    for shard in range(1, SHARDS + 1):
        running.start(shard)
    asyncio.run(prepare(running.stack.settings))
    yield running
    stopped = {name: running.stack.stop(name) for name in list(running.stack.procs)[::-1]}
    assert set(stopped.values()) <= {0}, {name: running.stack.log(name)[-1000:] for name in stopped}


@pytest.fixture
async def cch(cluster: Cluster) -> AsyncIterator[AsyncClient]:
    client = await clients.clickhouse(cluster.stack.settings)
    yield client
    await client.close()


def _batch(values: list[bytes], topic: str):  # noqa: ANN202
    batcher = Batcher(Decoder(1 << 20), 1_000_000, 1 << 30, 60.0)
    batcher.add(TopicPartition(topic, 0), [message(v, n, topic=topic) for n, v in enumerate(values)])
    return batcher.seal()


def _writer(ch: AsyncClient, topic: str) -> Writer:
    return Writer(ch, topic, IngestMetrics.create(), logs.get("test"), insert_timeout_s=30, max_rows=100_000)


async def _per_shard(cluster: Cluster, table: str, company: str) -> list[int]:
    found = []
    for shard in range(1, SHARDS + 1):
        client = await cluster.shard_client(shard)
        try:
            found.append(await client.command(f"SELECT count() FROM {table}_local WHERE company_id = {{c:String}}",
                                              parameters={"c": company}))
        finally:
            await client.close()
    return found


async def test_a_big_company_spreads_over_every_shard_and_a_query_id_is_read_from_one(
        cluster: Cluster, cch: AsyncClient) -> None:
    company, total = "shards-big", 20_000
    values = record_values(total, company, seed=901)
    assert await _writer(cch, "shards-big").write(_batch(values, "shards-big")) == []
    per_shard = await _per_shard(cluster, "calls", company)
    print(f"one company's {total} records per shard: {per_shard}")
    assert sum(per_shard) == total and min(per_shard) > 0.45 * total
    assert await _per_shard(cluster, "call_ids", company) == per_shard  # the lookup table sits with its calls
    record = orjson.loads(values[1234])
    pruned = {"force_optimize_skip_unused_shards": 1}  # fails unless the query reaches one shard only
    found = await cch.query(events_sql.query_id_timestamps(), settings=pruned,
                            parameters={"company": company, "query_id": record["query_id"]})
    (when,), = found.result_rows
    row = await cch.query(events_sql.by_query_id_between(), settings=pruned, parameters={
        "company": company, "query_id": record["query_id"], "lo": when, "hi": when + 1})
    assert [r[0] for r in row.result_rows] == [record["query_id"]]
    one_trip = await cch.query(events_sql.by_query_id(), settings=pruned,  # the lookup the service runs
                               parameters={"company": company, "query_id": record["query_id"]})
    assert [r[0] for r in one_trip.result_rows] == [record["query_id"]]


async def test_a_batch_retried_after_one_shard_took_its_part_is_stored_once(cluster: Cluster, cch: AsyncClient
                                                                             ) -> None:
    """The first attempt reached shard 1 and failed on shard 2: shard 1 holds its part under the
    batch's token. The retry sends the same batch with the same token through the Distributed table:
    shard 1 drops its (identical) part as a repeat, shard 2 writes its own, nothing twice."""
    company, topic, total = "shards-partial", "shards-partial", 3_000
    values = record_values(total, company, seed=902)
    batch = _batch(values, topic)
    first = await cluster.shard_client(1)
    try:
        on_shard_1 = [v for v in values if await first.command(
            "SELECT cityHash64({q:String}) % 2 = 0", parameters={"q": orjson.loads(v)["query_id"]})]
        settings = {**insert_settings(100_000), "insert_deduplication_token": batch_token(topic, batch)}
        await first.raw_insert("calls_local", None, b"\n".join(on_shard_1), fmt="JSONEachRow", settings=settings)
    finally:
        await first.close()
    assert await _per_shard(cluster, "calls", company) == [len(on_shard_1), 0]
    assert await _writer(cch, topic).write(batch) == []
    assert await _per_shard(cluster, "calls", company) == [len(on_shard_1), total - len(on_shard_1)]
    assert await _per_shard(cluster, "call_ids", company) == [len(on_shard_1), total - len(on_shard_1)]
    seen = await counts(cch, company)
    assert seen["rows"] == seen["distinct"] == seen["reader"] == total, seen


async def test_a_shard_down_is_a_503_naming_it_never_a_partial_answer(cluster: Cluster, cch: AsyncClient) -> None:
    company = "shards-down"
    values = record_values(200, company, seed=903)
    assert await _writer(cch, "shards-down").write(_batch(values, "shards-down")) == []
    token = create_token(cluster.stack, company)
    search = {"q": next(r["q"] for r in map(orjson.loads, values) if r.get("q")), "PageSize": 1000}
    async with query_service(cluster.stack, "query-shards") as service:
        before = await service.post("/events", search, bearer(token))
        assert before.status == 200 and before.body["Result"], before.body
        cluster.stop(2, signal.SIGKILL)
        try:
            for answer in (await service.post("/events", search, bearer(token)),
                           await service.get("/reports/api-logs?page_size=1000", bearer(token))):
                assert answer.status == 503, answer.body
                assert "shard" in orjson.dumps(answer.body).decode(), answer.body
        finally:
            cluster.start(2)
        after = await service.post("/events", search, bearer(token))
        assert after.status == 200 and after.body["Result"] == before.body["Result"]


async def test_a_shard_killed_during_ingestion_and_restarted_loses_and_duplicates_nothing(
        cluster: Cluster, cch: AsyncClient) -> None:
    company, total = "shards-kill", 60_000
    settings = replace(cluster.stack.with_topic("shards-kill"), batch_max_rows=2_000, batch_max_age_s=0.2,
                       insert_timeout_s=5.0)
    values = record_values(total, company, seed=904)
    await produce(settings, values)
    cluster.stack.spawn("ingest-shards", "ingest", settings=settings)
    try:
        written = await wait_distinct(cch, company, total // 5, timeout=120)
        cluster.stop(2, signal.SIGKILL)
        assert written < total * 0.8, "the shard went away in the middle of ingestion, not after it"
        await asyncio.sleep(5)
        cluster.start(2)
        await wait_distinct(cch, company, total, timeout=240)
        await asyncio.sleep(1.0)
    finally:
        cluster.stack.stop("ingest-shards")
    seen = await counts(cch, company)
    assert seen["distinct"] == seen["reader"] == seen["final"] == total, seen
    assert await stored_ids(cch, company) == {orjson.loads(v)["query_id"] for v in values}
    assert "insert failed, retrying" in cluster.stack.log("ingest-shards")
