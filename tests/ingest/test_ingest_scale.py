"""Scale out: two `trilha ingest` processes in one group split the partitions and, together, write
every record once."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from dataclasses import replace

import orjson

from tests.ingest.support import counts, produce, record_values, stored_ids, wait_distinct
from tests.stack import Stack, free_port

WORKERS = ("ingest-scale-a", "ingest-scale-b")


def _assigned(log: str) -> set[int] | None:
    """The partitions of the worker's latest assignment, from its log."""
    found = re.findall(r"partitions assigned .*partitions=\[([\d, ]*)\]", log)
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else None


def _rows_written(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    match = re.search(r"^trilha_ingest_rows_written_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_two_workers_split_the_partitions_and_write_every_record_once(stack: Stack, ch) -> None:  # noqa: ANN001
    """The second worker joins mid-ingestion, so the first also goes through a revocation (write what
    it holds, commit, hand over) while records are flowing; more records follow once both are in."""
    company, total, early = "ingest-scale", 80_000, 50_000
    base = replace(stack.with_topic("ingest-scale"), batch_max_rows=4_000, batch_max_age_s=0.2)
    values = record_values(total, company, seed=501)
    await produce(base, values[:early])
    ports = {name: free_port() for name in WORKERS}
    first, second = WORKERS
    stack.spawn(first, "ingest", settings=replace(base, metrics_port=ports[first]))
    try:
        await wait_distinct(ch, company, early // 5, timeout=120)
        stack.spawn(second, "ingest", settings=replace(base, metrics_port=ports[second]))
        for _ in range(120):  # both in the group, partitions split between them
            a, b = (_assigned(stack.log(name)) for name in WORKERS)
            if a and b and not a & b and a | b == {0, 1, 2, 3}:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"partitions were not split: {a} / {b}")
        await produce(base, values[early:])  # spread over every partition: both workers have work
        await wait_distinct(ch, company, total, timeout=180)
        written = {name: _rows_written(ports[name]) for name in WORKERS}
    finally:
        for name in WORKERS:
            assert stack.stop(name) == 0, stack.log(name)[-2000:]

    seen = await counts(ch, company)
    assert seen["distinct"] == seen["reader"] == seen["final"] == total, seen
    assert await stored_ids(ch, company) == {orjson.loads(v)["query_id"] for v in values}
    assert all(rows > 0 for rows in written.values()), written
    assert sum(written.values()) >= total, written
    assert "partitions revoked" in stack.log(first)
