"""Why `calls` is sharded by cityHash64(query_id): measured on the embedded stack (run it with
`SHARDS=2`, i.e. TRILHA_TEST_CLICKHOUSE_SHARDS=2, to see the cluster; with 1 shard it shows the
single-node baseline).

Prints, for the loaded records: each candidate key's share of the biggest company on its fullest
shard (1/N is ideal, 1.0 means the company sits on one shard); the QueryId lookup's latency with
and without routing to one shard (`optimize_skip_unused_shards`); a report page (newest 30 rows of
a company) and a `q` term's newest 50 keys, each one query through the Distributed tables.

    python -m tests.bench.bench_shard_key --records 300000
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from query.events import sql as events_sql
from services.runtime import clients
from tests.bench import dataset
from tests.bench.harness import in_own_stack
from tests.stack import Stack, shards_under_test

CANDIDATES = {"cityHash64(query_id)": "cityHash64(query_id)", "cityHash64(company_id)": "cityHash64(company_id)",
              "cityHash64(company_id, query_id)": "cityHash64(company_id, query_id)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    return in_own_stack("shard-key", lambda stack: run(stack, args))


async def _timed(ch: Any, sql: str, parameters: dict[str, Any], requests: int, **settings: Any) -> float:
    """Median milliseconds of `requests` sequential queries."""
    took = []
    for _ in range(requests):
        started = time.perf_counter()
        await ch.query(sql, parameters=parameters, settings=settings)
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


async def run(stack: Stack, args: argparse.Namespace) -> int:
    shards = max(2, shards_under_test())
    loaded = await dataset.load(stack.settings, args.records, progress=False)
    ch = await clients.clickhouse(stack.settings)
    try:
        print(f"{args.records:,} records, {shards_under_test()} shard(s); spread judged over {shards} shards")
        for name, key in CANDIDATES.items():
            share = await ch.command(
                f"SELECT max(n) / sum(n) FROM (SELECT {key} % {shards} AS s, count() AS n FROM calls "
                "WHERE company_id = (SELECT company_id FROM calls GROUP BY company_id ORDER BY count() DESC LIMIT 1) "
                "GROUP BY s)")
            print(f"  key {name:34s} biggest company's share on its fullest shard: {float(share):.3f}")
        company, query_id, _ = loaded.sample[len(loaded.sample) // 2]
        found = await ch.query(events_sql.query_id_timestamps(), parameters={"company": company, "query_id": query_id})
        when = found.result_rows[0][0]
        lookup = {"company": company, "query_id": query_id, "lo": when, "hi": when + 1}
        for routed in (1, 0):
            ids = await _timed(ch, events_sql.query_id_timestamps(), lookup, args.requests,
                               optimize_skip_unused_shards=routed)
            row = await _timed(ch, events_sql.by_query_id_between(), lookup, args.requests,
                               optimize_skip_unused_shards=routed)
            print(f"  QueryId lookup, optimize_skip_unused_shards={routed}: call_ids p50 {ids:.1f} ms, "
                  f"calls p50 {row:.1f} ms")
        page = ("SELECT query_id, timestamp FROM calls WHERE company_id = {company:String} "
                "ORDER BY timestamp DESC, query_id DESC LIMIT 1 BY query_id LIMIT 30")
        print(f"  report page (30 newest) p50 {await _timed(ch, page, {'company': company}, args.requests):.1f} ms")
        term = ("SELECT timestamp, query_id FROM call_terms WHERE company_id = {company:String} AND "
                "term = {term:String} ORDER BY timestamp DESC, query_id DESC LIMIT 1 BY timestamp, query_id LIMIT 50")
        hot = {"company": company, "term": f"q:doc{{{dataset.HOT_DOCS[0]}}}"}
        print(f"  q term, 50 newest keys p50 {await _timed(ch, term, hot, args.requests):.1f} ms")
    finally:
        await ch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
