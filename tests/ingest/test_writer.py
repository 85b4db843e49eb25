"""The writer against the real ClickHouse endpoint: a retried batch is stored once everywhere, rows
ClickHouse refuses are isolated and handed back while the rest is written, and a stopped worker has
committed exactly what it wrote."""

from __future__ import annotations

import signal
import time

import orjson
from aiokafka import TopicPartition

from ingest.batcher import Batcher
from ingest.decode import REJECTED_BY_CLICKHOUSE, Decoder
from ingest.metrics import IngestMetrics
from ingest.writer import Writer
from services.runtime import clients, logs
from tests.ingest.messages import message
from tests.ingest.support import counts, produce, record_values, wait_distinct
from tests.stack import Stack


def _batch(values: list[bytes], topic: str):  # noqa: ANN202
    batcher = Batcher(Decoder(1 << 20), 1_000_000, 1 << 30, 60.0)
    batcher.add(TopicPartition(topic, 0), [message(v, n, topic=topic) for n, v in enumerate(values)])
    return batcher.seal()


def _writer(ch, topic: str) -> Writer:  # noqa: ANN001
    return Writer(ch, topic, IngestMetrics.create(), logs.get("test"), insert_timeout_s=30, max_rows=100_000)


async def _table_counts(ch, company: str) -> tuple[int, int, int]:  # noqa: ANN001
    row = (await ch.query(
        "SELECT (SELECT count() FROM calls WHERE company_id = {c:String}), "
        "(SELECT count() FROM call_ids WHERE company_id = {c:String}), "
        "(SELECT count() FROM call_terms WHERE company_id = {c:String})", parameters={"c": company})).result_rows[0]
    return tuple(row)


async def test_a_batch_written_again_is_stored_once_in_every_table(ch) -> None:  # noqa: ANN001
    company = "writer-retry"
    batch = _batch(record_values(2_000, company, seed=601), "writer-retry")
    writer = _writer(ch, "writer-retry")
    assert await writer.write(batch) == []
    once = await _table_counts(ch, company)
    assert once[0] == once[1] == 2_000 and once[2] > 2_000
    assert await writer.write(batch) == []  # e.g. the first attempt timed out here but succeeded there
    assert await _table_counts(ch, company) == once


async def test_rows_clickhouse_refuses_are_isolated_and_the_rest_is_written(ch) -> None:  # noqa: ANN001
    company = "writer-bisect"
    values = record_values(1_000, company, seed=602)
    twice, zoned = {17, 500, 998}, {501}
    for n in twice:  # valid to the contract, refused by ClickHouse: a field given twice
        values[n] = values[n][:-1] + b',"status":201}'
    for n in zoned:  # an IPv6 address with a zone id: Python accepts it, ClickHouse does not
        values[n] = orjson.dumps({**orjson.loads(values[n]), "ip": "fe80::1%eth0"})
    refused = await _writer(ch, "writer-bisect").write(_batch(values, "writer-bisect"))
    assert sorted(r.offset for r in refused) == sorted(twice | zoned)
    assert {r.rejection.reason for r in refused} == {REJECTED_BY_CLICKHOUSE}
    assert all("status" in r.rejection.detail for r in refused if r.offset in twice)
    seen = await counts(ch, company)
    assert seen["rows"] == seen["distinct"] == 1_000 - len(twice | zoned)


async def test_sigterm_writes_and_commits_what_was_read_then_exits_promptly(stack: Stack, ch) -> None:  # noqa: ANN001
    settings = stack.with_topic("ingest-sigterm")
    company, total = "ingest-sigterm", 5_000
    await produce(settings, record_values(total, company, seed=603))
    stack.spawn("ingest-sigterm", "ingest", settings=settings)
    await wait_distinct(ch, company, total, timeout=120)
    started = time.monotonic()
    assert stack.stop("ingest-sigterm", signal.SIGTERM) == 0
    assert time.monotonic() - started < settings.shutdown_timeout_s + 5
    assert "ingest stopped" in stack.log("ingest-sigterm")

    consumer = clients.kafka_consumer(settings)  # in the group's name, without joining it
    await consumer.start()
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(settings.kafka_topic) or ())
        committed = [await consumer.committed(TopicPartition(settings.kafka_topic, p)) or 0 for p in partitions]
    finally:
        await consumer.stop()
    assert len(partitions) == settings.kafka_partitions and sum(committed) == total, committed


async def test_request_and_result_are_stored_as_their_json_text_whatever_their_type(ch) -> None:  # noqa: ANN001
    company = "writer-payloads"
    payloads = ["plain text\n\"quoted\"", {"a": [1, {"b": None}]}, [1, "two", 3.5], 42, 1.25, True, "",
                {"nested": "{not json}"}]
    base = orjson.loads(record_values(1, company, seed=604)[0])
    values = [orjson.dumps({**base, "query_id": f"p-{n}", "request": p, "result": p}) for n, p in enumerate(payloads)]
    assert await _writer(ch, "writer-payloads").write(_batch(values, "writer-payloads")) == []
    rows = (await ch.query("SELECT query_id, request, result FROM calls WHERE company_id = {c:String}",
                           parameters={"c": company})).result_rows
    stored = {qid: (request, result) for qid, request, result in rows}
    for n, payload in enumerate(payloads):
        request, result = stored[f"p-{n}"]
        assert orjson.loads(request) == payload and orjson.loads(result) == payload, (payload, request)
