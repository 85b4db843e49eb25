"""What one QueryId lookup reads, by ClickHouse's own accounting, on a kept `make bench-query` data set.

`python -m tests.bench.lookup_reads --reuse DIR [--requests N]`: for N stored calls picked at random,
the QueryId SQL of `query.events.sql` is run: the lookup the query service runs (`by_query_id`, one
round trip) and, to show where its reads go, its two parts alone (`call_ids`, then `calls` by its
key); each query's rows and bytes read (the `X-ClickHouse-Summary` ClickHouse
sends with every answer) and its wall time (through clickhouse-connect's row conversion) are
printed as medians. The stack applies any pending migration when it starts, so running it once on
the old code and once on the new shows both layouts.

`--costs`: where the time of the `calls` read goes. The read by full key is run selecting one
column, every column the Events API serves (its expressions: `toValidUTF8`, the IP text), and the
stored columns as they are (`SELECT *`), with each one's p50; then, for the served read, the
engine's own work per lookup (`system.events` before and after all of them): CPU, the planning
phases (parse, analysis, plan, plan optimisation, pipeline), bytes decompressed and marks loaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from query.calls import keyset, records
from query.events import sql as events_sql
from services.runtime import clients
from tests.bench.harness import in_own_stack
from tests.stack import Stack


async def run(stack: Stack, args: argparse.Namespace) -> int:
    ch = await clients.clickhouse(stack.settings)
    try:
        rows = (await ch.query("SELECT count() FROM calls")).result_rows[0][0]
        picked = (await ch.query("SELECT company_id, query_id FROM calls ORDER BY rand() LIMIT {n:UInt32}",
                                 parameters={"n": args.requests})).result_rows
        layout = (await ch.query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
                                 "AND name IN ('calls', 'calls_local') ORDER BY name DESC LIMIT 1")).result_rows
        print(f"{rows:,} records; calls: ...{layout[0][0][-90:]}")
        seen: dict[str, list[tuple[float, int, int]]] = {"by_query_id": [], "call_ids": [], "calls": []}
        for company, query_id in picked:
            params = {"company": company, "query_id": query_id}
            started = time.perf_counter()
            one = await ch.query(events_sql.by_query_id(), parameters=params)
            assert len(one.result_rows) == 1
            seen["by_query_id"].append(_reads(one.summary, started))
            started = time.perf_counter()
            found = await ch.query(events_sql.query_id_timestamps(), parameters=params)
            seen["call_ids"].append(_reads(found.summary, started))
            stamp = found.result_rows[0][0]
            started = time.perf_counter()
            got = await ch.query(events_sql.by_query_id_between(), parameters={**params, "lo": stamp, "hi": stamp + 1})
            assert len(got.result_rows) == 1
            seen["calls"].append(_reads(got.summary, started))
        for name, figures in seen.items():
            wall, read_rows, read_bytes = (statistics.median(f[n] for f in figures) for n in range(3))
            print(f"  {name:<11} p50 {wall:6.1f} ms   rows read {read_rows:>8,.0f}   bytes read {read_bytes:>12,.0f}")
        if args.costs:
            await costs(ch, picked)
    finally:
        await ch.close()
    return 0


_BY_KEY = (f"FROM calls WHERE company_id = {{company:String}} AND timestamp = {keyset.TS % 'ts'} "
           "AND query_id = {query_id:String}")
_ENGINE = ("OSCPUVirtualTimeMicroseconds", "QueryParseMicroseconds", "QueryAnalysisMicroseconds",
           "QueryPlanBuildMicroseconds", "QueryPlanOptimizeMicroseconds", "QueryPipelineBuildMicroseconds",
           "CompressedReadBufferBytes", "LoadedMarksCount", "MarkCacheHits", "MarkCacheMisses")


async def costs(ch: Any, picked: list[Any]) -> None:
    """p50 of the `calls` read by key with one, the served and all stored columns; the engine's work."""
    keys = [(company, query_id, (await ch.query(events_sql.query_id_timestamps(),
                                                parameters={"company": company, "query_id": query_id})
                                 ).result_rows[0][0]) for company, query_id in picked]
    shapes = {"1 column": "SELECT query_id ", "served columns": f"SELECT {records.columns()} ", "SELECT *": "SELECT * "}
    for name, head in shapes.items():
        times = []
        for company, query_id, ms in keys:
            started = time.perf_counter()
            await ch.raw_query(head + _BY_KEY, fmt="JSONEachRow", parameters={
                "company": company, "query_id": query_id, "ts": ms})
            times.append((time.perf_counter() - started) * 1000)
        print(f"  calls by key, {name:<15} p50 {statistics.median(times):6.1f} ms")
    before = await _events(ch)
    for company, query_id, ms in keys:
        await ch.raw_query(shapes["served columns"] + _BY_KEY, fmt="JSONEachRow",
                           parameters={"company": company, "query_id": query_id, "ts": ms})
    after = await _events(ch)
    print("  engine, per served read: " + ", ".join(
        f"{name} {(after.get(name, 0) - before.get(name, 0)) / len(keys):,.0f}" for name in _ENGINE))


async def _events(ch: Any) -> dict[str, int]:
    return dict((await ch.query("SELECT event, value FROM system.events")).result_rows)


def _reads(summary: dict[str, str], started: float) -> tuple[float, int, int]:
    return (time.perf_counter() - started) * 1000, int(summary.get("read_rows", 0)), int(summary.get("read_bytes", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", metavar="DIR", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--costs", action="store_true", help="also: where the time of the calls read goes")
    args = parser.parse_args(argv)
    return in_own_stack("lookup-reads", lambda stack: run(stack, args), reuse=args.reuse)


if __name__ == "__main__":
    sys.exit(main())
