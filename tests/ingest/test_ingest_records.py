"""200,000 records plus a few hundred bad ones: every good record stored once, every bad one
dead-lettered once with its reason and origin, none blocking the partition it arrived on."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import orjson

from ingest import dlq
from services.runtime import clients
from services.stack.records import RecordFactory
from tests.ingest.support import counts, header, produce, read_topic, record_values, stored_ids, wait_distinct
from tests.stack import Stack

COMPANY = "ingest-200k"
GOOD = 200_000
MAX_RECORD_BYTES = 16 * 1024


def malformed() -> dict[bytes, str]:
    """~300 bad messages, each unique, with the reason the worker must give for it."""
    base = RecordFactory(seed=42, companies=1).record(company=COMPANY)
    bad: dict[bytes, str] = {}
    for n in range(60):
        bad[f"not json at all #{n}".encode()] = "not_json"
        bad[orjson.dumps({**base, "query_id": f"cut-{n}"})[:-7]] = "not_json"
    for n in range(30):
        bad[orjson.dumps({k: v for k, v in base.items() if k != "query_id"} | {"n": n})] = "contract"
        bad[orjson.dumps({**base, "query_id": f"status-{n}", "status": "200"})] = "contract"
        bad[orjson.dumps({**base, "query_id": f"when-{n}", "timestamp": "yesterday"})] = "contract"
        bad[orjson.dumps([n, base["query_id"]])] = "contract"
    for n in range(55):
        bad[orjson.dumps({**base, "query_id": f"huge-{n}", "result": {"blob": "x" * (MAX_RECORD_BYTES + n)}})] = \
            "too_large"
    for n in range(5):  # valid JSON and contract, but ClickHouse refuses a field given twice
        bad[orjson.dumps({**base, "query_id": f"twice-{n}"})[:-1] + f',"query_id":"again-{n}"}}'.encode()] = \
            "clickhouse"
    return bad


async def test_200k_records_with_malformed_ones_mixed_in(stack: Stack, ch) -> None:  # noqa: ANN001
    settings = replace(stack.with_topic("ingest-200k"), max_record_bytes=MAX_RECORD_BYTES)
    good = record_values(GOOD, COMPANY, seed=200)
    bad = malformed()
    assert len(bad) == 300
    values = list(good)
    rng = random.Random(7)
    for value in bad:
        values.insert(rng.randrange(len(values)), value)
    await produce(settings, values, compression="lz4")

    stack.spawn("ingest-200k", "ingest", settings=settings)
    try:
        await wait_distinct(ch, COMPANY, GOOD, timeout=240)
        dead = await read_topic(settings, settings.kafka_dlq_topic, expected=len(bad), timeout=60)
    finally:
        assert stack.stop("ingest-200k") == 0, stack.log("ingest-200k")[-3000:]

    seen = await counts(ch, COMPANY)
    assert seen == {"rows": GOOD, "distinct": GOOD, "reader": GOOD, "final": GOOD}, seen
    expected_ids = {orjson.loads(v)["query_id"] for v in good}
    assert await stored_ids(ch, COMPANY) == expected_ids

    assert Counter(m.value for m in dead) == Counter(bad.keys()), "each bad message dead-lettered exactly once"
    source = await _source_offsets(settings, {m.value for m in dead})
    for message in dead:
        assert header(message, dlq.REASON) == bad[message.value]
        assert header(message, dlq.ERROR), "the reason says what is wrong"
        assert header(message, dlq.SOURCE_TOPIC) == settings.kafka_topic
        origin = (int(header(message, dlq.SOURCE_PARTITION)), int(header(message, dlq.SOURCE_OFFSET)))
        assert source[origin] == message.value, "the headers point at the original message"
        assert header(message, dlq.DEAD_LETTERED_AT).startswith("20")
    by_reason = Counter(header(m, dlq.REASON) for m in dead)
    assert by_reason == Counter(bad.values())
    assert any("Duplicate" in header(m, dlq.ERROR) for m in dead if header(m, dlq.REASON) == "clickhouse")


async def _source_offsets(settings, wanted: set[bytes]) -> dict[tuple[int, int], bytes]:  # noqa: ANN001
    """Where each of the `wanted` values sits in the source topic, found by reading all of it."""
    consumer = clients.kafka_consumer(settings, settings.kafka_topic, group_id=None,
                                      max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    found: dict[tuple[int, int], bytes] = {}
    try:
        idle = 0
        while len(found) < len(wanted) and idle < 20:
            batch = await consumer.getmany(timeout_ms=200)
            idle = 0 if batch else idle + 1
            for messages in batch.values():
                for m in messages:
                    if m.value in wanted:
                        found[(m.partition, m.offset)] = m.value
    finally:
        await consumer.stop()
    return found
