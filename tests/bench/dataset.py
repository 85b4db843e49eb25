"""Millions of realistic call records straight into ClickHouse, for the query benchmarks.

Records come from `RecordFactory` (small results, so loading is bounded by ClickHouse and not by
JSON size); a pool of factory records is re-stamped with fresh query ids, timestamps and input
documents, which keeps generation at a few microseconds per record instead of ~75 µs. They are
sent as JSONEachRow through `raw_insert` in large batches (the next batch is generated in a thread
while ClickHouse writes the current one), the materialized views filling
`call_ids` and `call_terms` as ingest would.

The data is shaped for paging benchmarks: `HOT_SHARE` of the records query one of `HOT_DOCS`, so a
`q` search for a hot document has thousands of results (≥ 200 pages of 50 from 500,000 records on),
while the other documents repeat a few times (a few dozen in 5 million). Timestamps are evenly
spaced `step` apart ending at `end`, so loading more records later with `end` just before the
previous `start` extends history backwards, as a growing table does.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.runtime import clients
from services.runtime.settings import Settings
from services.stack.records import RecordFactory, cpf

HOT_DOCS = ("52998224725", "11144477735")
HOT_SHARE = 0.15
COMPANIES = 3
_POOL = 5_000
_DOCUMENTS = 200_000
_INSERT_SETTINGS = {"date_time_input_format": "best_effort", "input_format_json_read_objects_as_strings": 1}


@dataclass(frozen=True)
class Loaded:
    """What a `load` call wrote: the time range, and a sample of query ids to look up."""

    count: int
    start: datetime
    end: datetime
    sample: list[tuple[str, str, datetime]]  # (company_id, query_id, timestamp)
    seconds: float


def batches(count: int, end: datetime, step: timedelta, seed: int, batch_rows: int,
            sample_every: int = 997) -> Iterator[tuple[bytes, list[tuple[str, str, datetime]]]]:
    """JSONEachRow batches of `count` records, oldest first, the last one at `end`."""
    factory = RecordFactory(seed=seed, companies=COMPANIES, result_bytes=(100, 300))
    pool = [factory.record(end) for _ in range(min(_POOL, count))]
    rng = random.Random(seed)
    documents = [f"doc{{{cpf(rng)}}}" for _ in range(min(_DOCUMENTS, count))]
    start = end - step * (count - 1)
    lines: list[bytes] = []
    sample: list[tuple[str, str, datetime]] = []
    for n in range(count):
        record = _restamp(pool[n % len(pool)], start + step * n, rng, documents)
        lines.append(orjson.dumps(record))
        if n % sample_every == 0:
            sample.append((record["company_id"], record["query_id"], start + step * n))
        if len(lines) == batch_rows:
            yield b"\n".join(lines), sample
            lines, sample = [], []
    if lines:
        yield b"\n".join(lines), sample


def _restamp(base: dict[str, Any], when: datetime, rng: random.Random, documents: list[str]) -> dict[str, Any]:
    record = dict(base)
    record["query_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record["timestamp"] = when.isoformat(timespec="milliseconds")
    draw = rng.random()
    if draw < HOT_SHARE:
        record["q"] = f"doc{{{HOT_DOCS[rng.randrange(len(HOT_DOCS))]}}}"
    elif draw < 0.8:
        record["q"] = documents[rng.randrange(len(documents))]
    return record


async def load(settings: Settings, count: int, *, end: datetime | None = None,
               step: timedelta = timedelta(seconds=6), seed: int = 11, batch_rows: int = 200_000,
               progress: bool = True) -> Loaded:
    """Insert `count` records ending at `end` (default: now), `step` apart; returns what was loaded."""
    end = end or datetime.now(UTC).replace(microsecond=0)
    ch = await clients.clickhouse(settings, send_receive_timeout=1800)
    started, done, sample = time.perf_counter(), 0, []
    produced = batches(count, end, step, seed, batch_rows)
    upcoming = asyncio.create_task(asyncio.to_thread(next, produced, None))
    try:
        while (ready := await upcoming) is not None:
            upcoming = asyncio.create_task(asyncio.to_thread(next, produced, None))  # generate while inserting
            body, picked = ready
            await ch.raw_insert("calls", insert_block=body, settings=_INSERT_SETTINGS, fmt="JSONEachRow")
            done += body.count(b"\n") + 1
            sample.extend(picked)
            if progress:
                rate = done / (time.perf_counter() - started)
                print(f"\r  loaded {done:,}/{count:,} records ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    finally:
        upcoming.cancel()
        await ch.close()
    if progress:
        print(file=sys.stderr)
    return Loaded(count, end - step * (count - 1), end, sample, time.perf_counter() - started)
