"""The emitter: records reach Kafka in order; an outage, a shutdown or bad input loses nothing silently."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.gateway.emitter import Emitter
from services.gateway.emitter.spill import SpillFile
from services.runtime import clients
from services.runtime.settings import Settings
from services.stack.records import RecordFactory
from tests.gateway.helpers import (
    OwnBroker,
    assert_stored_as_sent,
    by_company,
    first_copies,
    read_topic,
    stored_calls,
)
from tests.stack import Stack, free_port

RUN = uuid.uuid4().hex[:6]  # company names of this run only, whatever ClickHouse already holds


def _no_broker(stack: Stack, data_dir: Path) -> Settings:
    """Settings naming a port nothing listens on: Kafka is down from the start."""
    return replace(stack.settings, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=str(data_dir))


def _records(seed: int, count: int, prefix: str, companies: int = 3) -> list[dict[str, Any]]:
    factory = RecordFactory(seed=seed)
    return [factory.record(company=f"{prefix}-{RUN}-{n % companies}") for n in range(count)]


async def test_emitted_records_reach_kafka_keyed_and_in_order(stack: Stack) -> None:
    settings = stack.with_topic("gw-emit")
    await clients.ensure_topics(settings, settings.kafka_topic)
    records = _records(11, 600, "gw-emit")
    async with Emitter(replace(settings, data_dir=str(stack.data_dir)), name="gw-emit") as emitter:
        for record in records:
            assert await emitter.emit(record) is True
        assert await emitter.flush(60)
        assert (emitter.stats.accepted, emitter.stats.delivered, emitter.stats.dropped) == (600, 600, 0)

    arrived = first_copies(await read_topic(settings, settings.kafka_topic, {r["query_id"] for r in records}))
    assert by_company(arrived) == by_company(records)
    gateway = emitter.sequence.gateway_id if emitter.sequence else ""
    assert gateway.startswith("gw-emit.")  # as sent, plus the gateway's id and each record's number
    unnumbered = {r["query_id"]: {k: v for k, v in r.items() if k != "gateway_seq"} for r in arrived}
    assert unnumbered == {r["query_id"]: {**r, "gateway_id": gateway} for r in records}
    for company, ids in by_company(arrived).items():  # each company's records numbered 1, 2, 3, ... in order
        assert [r["gateway_seq"] for r in arrived if r["company_id"] == company] == list(range(1, len(ids) + 1))


async def test_records_emitted_while_the_broker_is_down_arrive_after_it_is_back(stack: Stack, tmp_path: Path,
                                                                              ch: AsyncClient) -> None:
    topic = "gw-outage"
    broker = OwnBroker(stack, "broker-gw", tmp_path)
    await broker.start(topic)
    emitter = await Emitter(broker.settings, name="outage", topic=topic, memory_max_bytes=64 * 1024).start()
    try:
        before = _records(21, 50, "gw-outage")
        for record in before:
            await emitter.emit(record)
        assert await emitter.flush(30)

        broker.stop()
        during = _records(22, 400, "gw-outage")  # ~700 KB: ten times the memory budget, so it spills
        for n, record in enumerate(during):
            assert await emitter.emit(record) is True
            if n % 50 == 0:
                await asyncio.sleep(0.05)
        await _eventually(lambda: emitter.stats.failures > 0, 60, "the emitter to notice the outage")
        assert emitter.stats.spilled > 0 and emitter.spill is not None and emitter.spill.size > 0

        await broker.start(topic)
        after = _records(23, 50, "gw-outage")
        for record in after:
            await emitter.emit(record)
        assert await emitter.flush(90)
        assert (emitter.stats.dropped, emitter.stats.invalid, emitter.stats.rejected) == (0, 0, 0)
        assert emitter.spill.size == 0  # everything delivered: the disk space is given back
        expected = during + after  # `before` went down with the broker's memory
        arrived = first_copies(await read_topic(broker.settings, topic, {r["query_id"] for r in expected}))
        wanted = {e["query_id"] for e in expected}
        assert by_company([r for r in arrived if r["query_id"] in wanted]) == by_company(expected)

        stack.spawn("ingest-gw-outage", "ingest", settings=replace(broker.settings, kafka_topic=topic,
                                                                     kafka_dlq_topic=f"{topic}.dlq",
                                                                     kafka_group=f"{topic}-group"))
        for company in {r["company_id"] for r in expected}:
            sent = [r for r in expected if r["company_id"] == company]
            rows = await stored_calls(ch, company, {r["query_id"] for r in sent})
            assert set(rows) == {r["query_id"] for r in sent}
            for record in sent:
                assert_stored_as_sent(rows[record["query_id"]], record)
    finally:
        stack.stop("ingest-gw-outage")
        await emitter.close()
        broker.stop()


async def test_clean_shutdown_with_the_broker_down_keeps_records_for_the_next_start(stack: Stack,
                                                                                  tmp_path: Path) -> None:
    topic = "gw-shutdown"
    broker = OwnBroker(stack, "broker-gw-shutdown", tmp_path)  # not started yet: Kafka is down
    records = _records(31, 300, "gw-shutdown")
    first = await Emitter(broker.settings, name="shutdown", topic=topic, memory_max_bytes=128 * 1024).start()
    for record in records:
        await first.emit(record)
    await first.close(timeout=5)
    assert first.stats.dropped == 0 and first.stats.delivered == 0
    assert first.spill is not None and first.spill.pending_records == 300

    await broker.start(topic)
    try:
        async with Emitter(broker.settings, name="shutdown", topic=topic) as second:
            assert await second.flush(60)
            assert second.stats.delivered == 300
        arrived = first_copies(await read_topic(broker.settings, topic, {r["query_id"] for r in records}))
    finally:
        broker.stop()
    assert by_company(arrived) == by_company(records)


async def test_when_memory_and_disk_are_full_every_drop_is_counted(stack: Stack, tmp_path: Path) -> None:
    settings = _no_broker(stack, tmp_path)
    emitter = await Emitter(settings, name="full", memory_max_bytes=16 * 1024,
                            spill_max_bytes=64 * 1024).start()
    records = _records(41, 200, "gw-full")  # ~340 KB against 80 KB of budgets
    outcomes = [await emitter.emit(r) for r in records]
    await emitter.close(timeout=2)
    stats = emitter.stats
    assert stats.dropped > 0 and stats.dropped == outcomes.count(False)
    assert stats.accepted == outcomes.count(True) and stats.accepted + stats.dropped == 200
    assert emitter.spill is not None and emitter.spill.pending_records == stats.accepted  # accepted = kept
    assert (tmp_path / "spill" / "full.spill").stat().st_size <= 64 * 1024


async def test_invalid_records_are_counted_and_never_sent(stack: Stack) -> None:
    settings = replace(stack.with_topic("gw-invalid"), data_dir=str(stack.data_dir))
    await clients.ensure_topics(settings, settings.kafka_topic)
    good = _records(51, 3, "gw-invalid")
    missing_company = {k: v for k, v in good[0].items() if k != "company_id"}
    bad_status = {**good[1], "query_id": "bad-status", "status": 999}
    unencodable = {**good[2], "query_id": "unencodable", "tags": {"x": "y"}, "request": {1, 2}}
    async with Emitter(settings, name="gw-invalid") as emitter:
        for bad in (missing_company, bad_status, unencodable, "not a record", None):
            assert await emitter.emit(bad) is False  # type: ignore[arg-type]
        for record in good:
            assert await emitter.emit(record) is True
        assert await emitter.flush(30)
        assert (emitter.stats.invalid, emitter.stats.delivered) == (5, 3)
    arrived = await read_topic(settings, settings.kafka_topic, {r["query_id"] for r in good})
    assert {r["query_id"] for r in arrived} == {r["query_id"] for r in good}


def test_spill_file_recovers_from_a_torn_write_and_resumes_where_delivery_stopped(tmp_path: Path) -> None:
    path = tmp_path / "s.spill"
    spill = SpillFile(path, 1 << 20)
    assert spill.open()
    assert spill.append_many([(b"c", f"record-{n}".encode()) for n in range(10)]) == 10
    entries, end = spill.read(4, 1 << 20)
    assert [v for _, v in entries] == [f"record-{n}".encode() for n in range(4)]
    spill.commit(end, 4)
    spill.close()
    with path.open("ab") as raw:  # a crash in the middle of writing a record
        raw.write(b"\x01\x00\x00\x00\xff\x00\x00\x00garbage")

    again = SpillFile(path, 1 << 20)
    assert again.open()
    assert again.pending_records == 6
    entries, end = again.read(100, 1 << 20)
    assert [v for _, v in entries] == [f"record-{n}".encode() for n in range(4, 10)]
    again.commit(end, 6)
    assert again.is_empty and path.stat().st_size == 0
    again.close()


def test_two_emitters_of_one_name_never_share_a_spill_file(tmp_path: Path) -> None:
    first, second = SpillFile(tmp_path / "a.spill", 1024), SpillFile(tmp_path / "a.spill", 1024)
    assert first.open()
    assert not second.open()
    first.close()
    assert second.open()
    second.close()


async def _eventually(predicate: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_emitting_before_start_or_after_close_is_a_counted_drop_not_an_error(stack: Stack,
                                                                                 tmp_path: Path) -> None:
    settings = _no_broker(stack, tmp_path)
    emitter = Emitter(settings, name="lifecycle")
    record = _records(61, 1, "gw-lifecycle")[0]
    assert await emitter.emit(record) is False
    await emitter.start()
    await emitter.close(timeout=1)
    assert await emitter.emit(record) is False
    assert (emitter.stats.dropped, emitter.stats.accepted) == (2, 0)
