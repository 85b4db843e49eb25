"""The embedded stack answers like the real engines: Kafka protocol in, ClickHouse over HTTP out."""

from __future__ import annotations

import orjson
import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.exceptions import DatabaseError

from services.runtime import clients
from services.stack.records import RecordFactory
from tests.stack import Stack


async def test_records_produced_to_kafka_are_read_back_from_clickhouse(stack: Stack, ch: AsyncClient) -> None:
    settings = stack.with_topic("foundation-roundtrip")
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    records = RecordFactory(seed=101, companies=1).records(500, company="company-roundtrip")
    producer = clients.kafka_producer(settings, compression_type="zstd")
    await producer.start()
    try:
        for record in records:
            await producer.send(settings.kafka_topic, orjson.dumps(record), key=record["company_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()

    stack.spawn("ingest-roundtrip", "ingest", settings=settings)
    try:
        await _wait_for_rows(ch, "company-roundtrip", len(records))
    finally:
        stack.stop("ingest-roundtrip")

    rows = await ch.query(
        "SELECT query_id, client_name, status, q, tags, result FROM calls WHERE company_id = {c:String} "
        "ORDER BY timestamp, query_id LIMIT 1 BY query_id", parameters={"c": "company-roundtrip"})
    by_id = {row[0]: row for row in rows.result_rows}
    assert set(by_id) == {r["query_id"] for r in records}
    sample = records[123]
    _, client_name, status, q, tags, result = by_id[sample["query_id"]]
    assert (client_name, status, q, tags) == (sample["client_name"], sample["status"], sample["q"], sample["tags"])
    assert orjson.loads(result) == sample["result"]


async def _wait_for_rows(ch: AsyncClient, company: str, expected: int, timeout: float = 90) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    count = -1
    while asyncio.get_running_loop().time() < deadline:
        count = (await ch.query("SELECT uniqExact(query_id) FROM calls WHERE company_id = {c:String}",
                                parameters={"c": company})).result_rows[0][0]
        if count >= expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{company}: {count} of {expected} records reached ClickHouse")


async def test_bad_sql_reaches_the_client_as_a_coded_clickhouse_error(ch: AsyncClient) -> None:
    with pytest.raises(DatabaseError) as syntax:
        await ch.query("SELEC 1")
    assert "Code: 62" in str(syntax.value) and "SYNTAX_ERROR" in str(syntax.value)

    with pytest.raises(DatabaseError) as missing:
        await ch.query("SELECT * FROM no_such_table_anywhere")
    assert "Code: 60" in str(missing.value)


async def test_bound_parameters_never_become_sql(ch: AsyncClient) -> None:
    hostile = "x' OR 1=1 --"
    result = await ch.query("SELECT {v:String} AS v, count() FROM calls WHERE query_id = {v:String}",
                            parameters={"v": hostile})
    assert result.result_rows == [(hostile, 0)]
