"""The same round trip against real Kafka and ClickHouse containers, where a Docker engine exists.

The whole suite also runs there unchanged with TRILHA_TEST_BACKEND=containers; this module makes
sure a machine with Docker exercises the real engines at least once in every `make test`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest

from services.runtime import clients
from services.stack.records import RecordFactory


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:  # noqa: BLE001 - any failure means there is no usable engine
        return False
    return True


pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not _docker_available(), reason="no Docker engine on this machine")]


def test_records_round_trip_through_real_kafka_and_clickhouse(tmp_path: Path) -> None:
    from tests.stack import running_stack

    os.environ["TRILHA_TEST_BACKEND"] = "containers"
    try:
        with running_stack(tmp_path) as stack:
            records = RecordFactory(seed=77, companies=1).records(300, company="company-docker")
            asyncio.run(_produce(stack.settings, records))
            stack.spawn("ingest-docker", "ingest")
            assert asyncio.run(_count(stack.settings, "company-docker", len(records))) == len(records)
    finally:
        os.environ.pop("TRILHA_TEST_BACKEND", None)


async def _produce(settings, records) -> None:  # noqa: ANN001
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    producer = clients.kafka_producer(settings)
    await producer.start()
    try:
        for record in records:
            await producer.send(settings.kafka_topic, orjson.dumps(record))
    finally:
        await producer.stop()


async def _count(settings, company: str, expected: int) -> int:  # noqa: ANN001
    client = await clients.clickhouse(settings)
    try:
        for _ in range(240):
            result = await client.query("SELECT uniqExact(query_id) FROM calls WHERE company_id = {c:String}",
                                        parameters={"c": company})
            if result.result_rows[0][0] >= expected:
                break
            await asyncio.sleep(0.5)
        return result.result_rows[0][0]
    finally:
        await client.close()
