"""How completeness per gateway costs as a gateway's sequence grows: one gateway with `--records`
numbers stored (a few missing here and there), then `GET /gateways/{id}/completeness`'s work
(`query.gateways.store.completeness`) timed, p50 and p99 over `--requests` calls, and the bytes
`gateway_blocks` takes on disk (beside `calls`).

    python -m tests.bench.bench_completeness --records 5000000
"""

from __future__ import annotations

import argparse
import statistics
import time

from query.access.tenant import TenantScope
from query.gateways.store import completeness
from services.runtime import clients
from tests.bench.harness import in_own_stack
from tests.stack import Stack

COMPANY, GATEWAY = "bench-co", "bench-gw.00000000"


async def _fill(ch, records: int, chunk: int = 250_000) -> None:  # noqa: ANN001
    """Numbers 1..records, one call a millisecond, without every 1,000,003rd and a run of 50 after the
    first million."""
    for first in range(1, records + 1, chunk):
        count = min(chunk, records + 1 - first)
        await ch.command(
            "INSERT INTO calls (company_id, timestamp, query_id, duration_ms, gateway_id, gateway_seq) "
            "SELECT {c:String}, now64(3) - toIntervalMillisecond({r:UInt64} - number), generateUUIDv4(), 1, "
            "{g:String}, number FROM numbers({f:UInt64}, {n:UInt64}) "
            "WHERE number % 1000003 != 0 AND NOT (number BETWEEN 1000010 AND 1000059)",
            parameters={"c": COMPANY, "g": GATEWAY, "f": first, "n": count, "r": records},
            settings={"max_execution_time": 600})


async def _work(stack: Stack, records: int, requests: int) -> int:
    ch = await clients.clickhouse(stack.settings)
    started = time.perf_counter()
    await _fill(ch, records)
    print(f"stored {records:,} numbered calls in {time.perf_counter() - started:.1f} s")
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        (found,) = await completeness(ch, TenantScope(COMPANY), 100, GATEWAY)
        timings.append((time.perf_counter() - began) * 1000)
    print(f"watermark {found.watermark:,}, highest {found.highest:,}, missing {found.highest - found.stored:,}, "
          f"gaps listed {len(found.gaps)}")
    timings.sort()
    print(f"completeness of one gateway: p50 {statistics.median(timings):.1f} ms, "
          f"p99 {timings[int(len(timings) * 0.99) - 1]:.1f} ms ({requests} calls)")
    sizes = dict((await ch.query("SELECT replaceOne(table, '_local', '') AS t, sum(data_compressed_bytes) "
                                 "FROM system.parts WHERE active AND t IN ('gateway_blocks', 'calls') "
                                 "GROUP BY t")).result_rows)  # on shards: the first shard's share
    print(f"on disk: gateway_blocks {sizes.get('gateway_blocks', 0):,} bytes, calls {sizes.get('calls', 0):,} bytes")
    await ch.close()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    raise SystemExit(in_own_stack("completeness", lambda stack: _work(stack, args.records, args.requests)))


if __name__ == "__main__":
    main()
