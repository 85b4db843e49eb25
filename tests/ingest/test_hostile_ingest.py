"""Property, against the real broker, ClickHouse and `trilha ingest`: a batch of hostile messages
mixed into valid records never stops ingest. Every message is stored (visible exactly once) or
dead-lettered exactly once with a reason; the one worker process lives through every example; and
the committed offset reaches the end of every partition."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from ingest import dlq
from ingest.decode import Decoder
from services.runtime import clients
from services.runtime.settings import Settings
from tests.ingest.hostile import REASONS, RECORD, hostile_records
from tests.ingest.support import drained, header, produce, record_values
from tests.stack import Stack

MAX_RECORD_BYTES = 16 * 1024
WORKER = "hostile-ingest"
MESSAGE = st.one_of(
    hostile_records(keep=("query_id", "company_id")),
    st.binary(max_size=200),
    st.builds(lambda n: orjson.dumps({k: v for k, v in RECORD.items() if k != "request"})[:-1]
              + b',"request":' + b"[" * n + b"]" * n + b"}", st.integers(60, 1100)),
)


@pytest.fixture(scope="module")
async def worker(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """One `trilha ingest` for every example: it must survive all of them."""
    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    config = replace(stack.with_topic(topic), max_record_bytes=MAX_RECORD_BYTES, batch_max_age_s=0.3)
    await clients.ensure_topics(config, config.kafka_topic, config.kafka_dlq_topic)
    proc = stack.spawn(WORKER, "ingest", settings=config)
    state = {"settings": config, "proc": proc, "produced": 0}
    try:
        yield state
    finally:
        assert stack.stop(WORKER) == 0, stack.log(WORKER)[-3000:]


def _own(value: bytes, company: str) -> bytes:
    """The message with a query_id of its own and the example's company, where it has those fields."""
    if not value.startswith(b"{") or RECORD["query_id"].encode() not in value:
        return value + b" " + uuid.uuid4().hex.encode()  # unique, so its dead letter can be recognised
    return (value.replace(RECORD["query_id"].encode(), uuid.uuid4().hex.encode(), 1)
            .replace(orjson.dumps(RECORD["company_id"]), orjson.dumps(company), 1))


async def _dead_letters(config: Settings, settle_s: float = 1.5) -> list[Any]:
    """Every dead letter so far (read from the start each time: the topic is this module's own)."""
    consumer = clients.kafka_consumer(config, config.kafka_dlq_topic, group_id=None,
                                      max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    found: list[Any] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < settle_s:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                found.extend(messages)
                idle_since = time.monotonic()
    finally:
        await consumer.stop()
    return found


async def _stored(ch: Any, company: str) -> Counter[str]:
    """query_id → rows in the reader's view (de-duplicated by key, as every reader does)."""
    rows = await ch.query("SELECT query_id, count() FROM (SELECT timestamp, query_id FROM calls "
                          "WHERE company_id = {c:String} ORDER BY timestamp, query_id LIMIT 1 BY timestamp, query_id) "
                          "GROUP BY query_id", parameters={"c": company})
    return Counter({q: n for q, n in rows.result_rows})


def _expected(values: list[bytes]) -> tuple[set[str], set[bytes]]:
    """What the decoder lets through (query_ids, to be stored) and what it refuses (to be dead-lettered)."""
    decode, stored, refused = Decoder(MAX_RECORD_BYTES), set(), set()
    for value in values:
        out = decode(value)
        if isinstance(out, bytes):
            stored.add(msgspec.json.decode(bytes(msgspec.json.decode(out, type=dict[str, msgspec.Raw])["query_id"]),
                                           type=str))
        else:
            refused.add(value)
    return stored, refused


def _record(**raw: bytes) -> bytes:
    """RECORD with fields given as raw JSON bytes."""
    return orjson.dumps({k: v for k, v in RECORD.items() if k not in raw})[:-1] + b"".join(
        b',"%s":%s' % (k.encode(), v) for k, v in raw.items()) + b"}"


# The shapes issue #10 found, always among the examples: each once stopped a partition or was lost.
KNOWN = [
    _record(client_name=b'"\xff\xfe"'), _record(request=b'{"a":"\xff"}'), _record(request=b"[" * 1000 + b"]" * 1000),
    _record(result=b'{"a":' * 300 + b"1" + b"}" * 300), _record(timestamp=b'"2026-11-29t10:00:00z"'),
    _record(timestamp=b'"2026-11-29T10:00:00z"', request=b'"texto"'), _record(timestamp=b'"0001-01-01T00:00:00+01:00"'),
    _record(timestamp=b'"9999-12-31T23:59:59-01:00"'), _record(result=b'"' + b"x" * 20_000 + b'"'),
    _record(request=b'{"a":"\\ud800"}'), _record(result=b"1e999999"), b"\xff\xfe", b"",
    _record()[:-1] + b',"query_id":"again"}',  # valid JSON and contract; ClickHouse refuses the repeated key
    orjson.dumps({**RECORD, "timestamp": "2026-11-29t10:00:00.5z"}, option=orjson.OPT_INDENT_2),  # lines in a row
]


@example(hostile=KNOWN, valid=100, rng=random.Random(0))
@settings(max_examples=8, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(MESSAGE, min_size=20, max_size=60), st.integers(150, 300), st.randoms(use_true_random=False))
async def test_hostile_messages_never_stop_ingest(worker: dict[str, Any], ch: Any, stack: Stack,
                                                  hostile: list[bytes], valid: int, rng: Any) -> None:
    config, company = worker["settings"], f"hostile-{uuid.uuid4().hex[:10]}"
    values = record_values(valid, company, seed=rng.randrange(1 << 30))
    for value in hostile:
        values.insert(rng.randrange(len(values) + 1), _own(value, company))
    await produce(config, values)

    worker["produced"] += len(values)
    offsets = await drained(config, worker["produced"])
    assert sum(offsets.values()) == worker["produced"], f"committed {offsets} of {worker['produced']} messages"
    assert worker["proc"].poll() is None, stack.log(WORKER)[-3000:]

    should_store, should_refuse = _expected(values)
    dead = [m for m in await _dead_letters(config) if m.value in set(values)]
    by_value = Counter(m.value for m in dead)
    for message in dead:
        assert header(message, dlq.REASON) in REASONS and header(message, dlq.ERROR).strip()
    stored = await _stored(ch, company)
    refused_by_clickhouse = {m.value for m in dead if header(m, dlq.REASON) == "clickhouse"}
    assert {v for v in by_value} == should_refuse | refused_by_clickhouse
    assert all(b'"query_id":"again"' in v for v in refused_by_clickhouse), "what the contract accepts is storable"
    assert all(n == 1 for n in by_value.values()), "each refused message is dead-lettered exactly once"
    assert all(n == 1 for n in stored.values()), "each stored record is visible exactly once"
    kept = set(stored)
    assert kept <= should_store
    assert len(should_store - kept) == len(refused_by_clickhouse), "a let-through record not stored was refused"
