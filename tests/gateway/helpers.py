"""What the gateway tests share: reading a topic back, and a broker of their own to stop and start."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from services import clients
from services.netcheck import wait_for_port
from services.settings import Settings
from tests.stack import Stack, free_port


async def read_topic(settings: Settings, topic: str, expected_ids: set[str],
                     timeout: float = 60) -> list[dict[str, Any]]:
    """Every record on `topic` (all partitions, from the start) once all `expected_ids` are there.

    Records come back in partition order; counting ids, not end offsets, decides "all read"
    (the embedded broker's high watermark can lag with compressed batches).
    """
    consumer = clients.kafka_consumer(settings, topic, group_id=None, auto_offset_reset="earliest")
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        await consumer.start()
        deadline = asyncio.get_running_loop().time() + timeout
        while not expected_ids <= seen:
            if asyncio.get_running_loop().time() > deadline:
                missing = len(expected_ids - seen)
                raise AssertionError(f"{missing} of {len(expected_ids)} records never reached topic {topic}")
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    assert message.key == record["company_id"].encode()
                    records.append(record)
                    seen.add(record["query_id"])
        await asyncio.sleep(0.3)  # stragglers (duplicates, unexpected extras) the test may want to see
        for messages in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(orjson.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return records


def first_copies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in arrival order without later duplicates (delivery is at least once)."""
    seen: set[str] = set()
    unique = []
    for record in records:
        if record["query_id"] not in seen:
            seen.add(record["query_id"])
            unique.append(record)
    return unique


def by_company(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    for record in records:
        order.setdefault(record["company_id"], []).append(record["query_id"])
    return order


class OwnBroker:
    """An embedded broker only this test uses, so stopping it disturbs nobody (it keeps no data)."""

    def __init__(self, stack: Stack, name: str, data_dir: Path) -> None:
        self.stack, self.name = stack, name
        self.port = free_port()
        self.settings = replace(stack.settings, kafka_bootstrap_servers=f"127.0.0.1:{self.port}",
                                kafka_idempotence=False, data_dir=str(data_dir))

    async def start(self, *topics: str) -> None:
        self.stack.spawn(self.name, "broker", settings=self.settings)
        if not await asyncio.to_thread(wait_for_port, "127.0.0.1", self.port, 60):
            raise RuntimeError(f"broker {self.name} did not start:\n{self.stack.log(self.name)}")
        if topics:  # memory only: a restarted broker has forgotten its topics
            await clients.ensure_topics(self.settings, *topics, partitions=2)

    def stop(self) -> None:
        self.stack.stop(self.name)


async def wait_for_calls(ch: AsyncClient, company: str, expected: int, timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    count = -1
    while asyncio.get_running_loop().time() < deadline:
        count = (await ch.query("SELECT uniqExact(query_id) FROM calls WHERE company_id = {c:String}",
                                parameters={"c": company})).result_rows[0][0]
        if count >= expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{company}: {count} of {expected} records reached ClickHouse")
