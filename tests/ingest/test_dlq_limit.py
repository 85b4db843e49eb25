"""The dead-letter limit, against the real broker, ClickHouse and `trilha ingest`: a flood of bad
records (a producer's bad deploy) stops the worker loudly, with exit status 3, before the batch
that tripped the limit is dead-lettered or committed, so that once the flood is dealt with a new
worker stores or dead-letters every message; and mixes of good and bad records under the limit
never stop it (property)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ingest.dlq_limit import DeadLetterLimit, DeadLetterLimitExceeded
from services.runtime import clients
from services.runtime.procs import EXIT_DO_NOT_RESTART
from services.runtime.settings import Settings
from services.stack.supervisor import Child, Supervisor
from tests.ingest.hostile import RECORD
from tests.ingest.support import committed, drained, read_topic, record_values, wait_distinct
from tests.stack import Stack

RATIO = 0.5


def _bad(n: int, tag: str) -> bytes:
    """A record ingest must refuse (three kinds in turn: not JSON, a contract break, no query_id)."""
    kind = n % 3
    if kind == 0:
        return f"not json {tag} #{n}".encode()
    if kind == 1:
        return orjson.dumps({**RECORD, "query_id": f"{tag}-{n}", "status": "two hundred"})
    return orjson.dumps({k: v for k, v in RECORD.items() if k != "query_id"} | {"note": f"{tag}-{n}"})


async def _produce(config: Settings, values: Sequence[bytes], partition: int | None = None) -> None:
    """In order; to one partition when given (so the worker sees them in exactly this order)."""
    producer = clients.kafka_producer(config)
    await producer.start()
    try:
        sent = [await producer.send(config.kafka_topic, v, partition=partition) for v in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _exit(proc: Any, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc.poll()


async def test_a_flood_of_bad_records_stops_ingest_loudly_and_nothing_past_it_is_committed(
        stack: Stack, ch: Any) -> None:
    name, company = "dlq-limit-flood", f"flood-{uuid.uuid4().hex[:8]}"
    config = replace(stack.with_topic(f"flood-{uuid.uuid4().hex[:8]}"), batch_max_rows=250, batch_max_age_s=0.3,
                     ingest_dlq_limit_ratio=RATIO, ingest_dlq_limit_window=500)
    await clients.ensure_topics(config, config.kafka_topic, config.kafka_dlq_topic)
    good, bad = record_values(1000, company, seed=77), [_bad(n, company) for n in range(3000)]
    proc = stack.spawn(name, "ingest", settings=config)
    try:
        await _produce(config, good)
        await wait_distinct(ch, company, len(good), timeout=120)
        await _produce(config, bad)  # the bad deploy
        code = _exit(proc, 90)
    finally:
        stack.stop(name)
    log = stack.log(name)
    assert code == EXIT_DO_NOT_RESTART, log[-3000:]
    assert "dead-letter limit exceeded" in log and "TRILHA_INGEST_DLQ_LIMIT_RATIO=0.5" in log, log[-3000:]
    assert "Traceback" not in log, "a clear line, not a crash"

    offsets = await committed(config)
    everything = await read_topic(config, config.kafka_topic, expected=len(good) + len(bad), settle_s=0.5)
    dead = {m.value for m in await read_topic(config, config.kafka_dlq_topic, expected=0, timeout=5,
                                              settle_s=1.0)}
    assert len(everything) == len(good) + len(bad)
    assert sum(offsets.values()) < len(everything), "the flood's offsets were not all committed"
    assert len(dead) < len(bad), "the worker stopped instead of dead-lettering the whole flood"
    below = [m for m in everything if m.offset < offsets.get(m.partition, 0)]
    assert all(m.value in dead for m in below if m.value in set(bad)), "a committed bad record is dead-lettered"

    # The flood was expected after all (or the producer fixed): a worker without the limit loses nothing.
    fixed = replace(config, ingest_dlq_limit_ratio=1.0)
    stack.spawn(name, "ingest", settings=fixed)
    try:
        assert sum((await drained(fixed, len(everything), timeout=120)).values()) == len(everything)
    finally:
        assert stack.stop(name) == 0, stack.log(name)[-3000:]
    dead = {m.value for m in await read_topic(config, config.kafka_dlq_topic, expected=len(bad), settle_s=1.0)}
    assert dead == set(bad), "every bad record is dead-lettered once the limit is lifted"
    assert await wait_distinct(ch, company, len(good)) == len(good)


def test_the_supervisor_leaves_a_worker_stopped_by_the_limit_stopped(tmp_path: Path) -> None:
    supervisor = Supervisor(Settings.from_env({}), tmp_path, tmp_path)
    child = Child("ingest", [sys.executable, "-c", f"import sys; sys.exit({EXIT_DO_NOT_RESTART})"])
    supervisor.spawn(child)
    assert child.proc is not None and child.proc.wait(30) == EXIT_DO_NOT_RESTART
    first = child.proc
    for _ in range(3):
        supervisor.watch_once()
        time.sleep(0.6)
    supervisor.watch_once()
    assert child.held and child.proc is first, "not restarted"


# --- under the limit, the worker never stops (property) ---------------------------------------------

WINDOW, BATCH = 200, 100  # batches never exceed the window, so the judged span is under 2 windows


@pytest.fixture(scope="module")
async def worker(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """One worker, one partition (so it sees the records in the order they were made), every example."""
    topic = f"under-limit-{uuid.uuid4().hex[:8]}"
    config = replace(stack.with_topic(topic), kafka_partitions=1, batch_max_rows=BATCH, batch_max_age_s=0.2,
                     ingest_dlq_limit_ratio=RATIO, ingest_dlq_limit_window=WINDOW)
    await clients.ensure_topics(config, config.kafka_topic, config.kafka_dlq_topic)
    proc = stack.spawn("dlq-under-limit", "ingest", settings=config)
    state: dict[str, Any] = {"settings": config, "proc": proc, "produced": 0, "history": []}
    try:
        yield state
    finally:
        assert stack.stop("dlq-under-limit") == 0, stack.log("dlq-under-limit")[-3000:]


def _under_limit(history: list[bool], wanted: list[bool]) -> list[bool]:
    """`wanted` with bad flags turned good where a window of WINDOW records (history included) would
    hold more than RATIO / 2 of bad ones: then every span of WINDOW to 2 * WINDOW records is under RATIO."""
    cap, flags = int(WINDOW * RATIO / 2), list(history[-WINDOW:])
    for bad in wanted:
        window = flags[-(WINDOW - 1):]
        flags.append(bad and sum(window) < cap)
    return flags[len(history[-WINDOW:]):]


@settings(max_examples=6, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.booleans(), min_size=50, max_size=450), st.booleans())
async def test_good_and_bad_records_under_the_limit_never_stop_ingest(worker: dict[str, Any], stack: Stack,
                                                                    wanted: list[bool], bursty: bool) -> None:
    config = worker["settings"]
    if bursty:  # the bad ones together, as a short outage of a producer would send them
        wanted = sorted(wanted, reverse=True)
    flags = _under_limit(worker["history"], wanted)
    company = f"under-{uuid.uuid4().hex[:8]}"
    good = iter(record_values(len(flags), company, seed=len(worker["history"])))
    values = [_bad(n, company) if bad else next(good) for n, bad in enumerate(flags)]
    await _produce(config, values, partition=0)
    worker["produced"] += len(values)
    worker["history"] += flags
    offsets = await drained(config, worker["produced"])
    assert sum(offsets.values()) == worker["produced"], stack.log("dlq-under-limit")[-3000:]
    assert worker["proc"].poll() is None, stack.log("dlq-under-limit")[-3000:]


# --- the rule itself ---------------------------------------------------------------------------------

def _each_under(limit: DeadLetterLimit, batches: list[tuple[int, int]], ratio: float) -> None:
    """Count `batches`, each with at most `ratio` of its records rejected (a hair below, against
    float rounding)."""
    for records, rejected in batches:
        limit.count(records, min(rejected, max(0, math.floor(records * ratio - 1e-9))))


BATCHES = st.lists(st.integers(1, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))), max_size=60)


@given(BATCHES, st.floats(0.05, 0.95), st.integers(1, 2000))
def test_batches_each_under_the_ratio_never_trip_the_limit(batches: list[tuple[int, int]], ratio: float,
                                                           window: int) -> None:
    _each_under(DeadLetterLimit(ratio, window), batches, ratio)


@given(BATCHES, st.floats(0.05, 0.95), st.integers(1, 2000))
def test_a_window_of_nothing_but_rejects_always_trips_the_limit(batches: list[tuple[int, int]], ratio: float,
                                                                window: int) -> None:
    limit = DeadLetterLimit(ratio, window)
    with pytest.raises(DeadLetterLimitExceeded):
        _each_under(limit, batches, ratio)
        for _ in range(window):
            limit.count(1, 1)


@given(BATCHES)
def test_a_ratio_of_one_never_trips(batches: list[tuple[int, int]]) -> None:
    limit = DeadLetterLimit(1.0, 1)
    for records, _ in batches:
        limit.count(records, records)
