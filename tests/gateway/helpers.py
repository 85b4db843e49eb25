"""What the gateway tests share: reading a topic back, and a broker of their own to stop and start."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from tests.stack import Stack, free_port


@asynccontextmanager
async def ingested(stack: Stack, topic: str, name: str) -> AsyncIterator[Settings]:
    """Settings for `topic`, with a real `trilha ingest` process (`name`) writing it into ClickHouse."""
    settings = stack.with_topic(topic)
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    stack.spawn(name, "ingest", settings=settings)
    try:
        yield settings
    finally:
        stack.stop(name)


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


CONTRACT_COLUMNS = ("query_id", "company_id", "timestamp", "duration_ms", "client_id", "client_name",
                    "client_username", "authorization_id", "authorization_name", "user_id", "ip", "server",
                    "method", "url", "resource", "event", "status", "error", "error_message", "q", "tags",
                    "request", "result", "schema_version")


async def stored_calls(ch: AsyncClient, company: str, expected: int | set[str],
                       timeout: float = 90) -> dict[str, dict]:
    """The company's rows in ClickHouse by QueryId (de-duplicated), once `expected` (a count, or the
    QueryIds that must be there) have arrived."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await _calls(ch, company)
        done = expected <= set(rows) if isinstance(expected, set) else len(rows) >= expected
        if done:
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{company}: {len(rows)} records in ClickHouse, waiting for {expected}")
        await asyncio.sleep(0.5)


async def _calls(ch: AsyncClient, company: str) -> dict[str, dict]:
    result = await ch.query(
        f"SELECT {', '.join(CONTRACT_COLUMNS)} FROM calls WHERE company_id = {{c:String}} "
        "ORDER BY timestamp, query_id LIMIT 1 BY query_id", parameters={"c": company})
    rows = [dict(zip(CONTRACT_COLUMNS, row, strict=True)) for row in result.result_rows]
    for row in rows:
        row["ip"] = str(getattr(row["ip"], "ipv4_mapped", None) or row["ip"])
        row["request"] = orjson.loads(row["request"]) if row["request"] else None
        row["result"] = orjson.loads(row["result"]) if row["result"] else None
    return {row["query_id"]: row for row in rows}


def assert_stored_as_sent(row: dict[str, Any], record: dict[str, Any]) -> None:
    """Every field the record carries is in the row, as sent (absent optional strings are stored empty)."""
    from datetime import UTC, datetime

    for name in CONTRACT_COLUMNS:
        sent = record.get(name)
        got = row[name]
        if name == "timestamp":
            assert got.replace(tzinfo=got.tzinfo or UTC) == datetime.fromisoformat(sent), name
        elif name == "error" and sent is None:
            assert got == (record["status"] >= 400), name
        elif name == "ip" and sent is not None:
            assert ipaddress.ip_address(got) == ipaddress.ip_address(sent), name
        elif name in ("request", "result"):
            assert got == sent, name
        elif name == "tags":
            assert got == (sent or {}), name
        elif sent is None:
            assert got in ("", None, 0, "::"), f"{name}: {got!r}"
        else:
            assert got == sent, f"{name}: stored {got!r}, sent {sent!r}"
