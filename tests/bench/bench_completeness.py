"""How completeness per gateway costs as a gateway's sequence grows: one gateway with `--records`
numbers stored (a few missing here and there), then `GET /gateways/{id}/completeness`'s work
(`query.gateways.store.completeness`) timed, p50 and p99 over `--requests` calls, and the bytes
`gateway_blocks` takes against `calls`' own gateway columns.

    python -m tests.bench.bench_completeness --records 5000000
"""

from __future__ import annotations

import argparse
import statistics
import time

from query.gateways.store import completeness
from services.runtime import clients
from tests.bench.harness import in_own_stack
from tests.stack import Stack

COMPANY, GATEWAY = "bench-co", "bench-gw.00000000"


async def _fill(ch, records: int, chunk: int = 1_000_000) -> None:  # noqa: ANN001
    """Numbers 1..records, without every 1,000,003rd and a run of 50 after the first million."""
    for first in range(1, records + 1, chunk):
        count = min(chunk, records + 1 - first)
        await ch.command(
            "INSERT INTO calls (company_id, timestamp, query_id, duration_ms, gateway_id, gateway_seq) "
            "SELECT {c:String}, now64(3), toString(number), 1, {g:String}, number FROM numbers({f:UInt64}, {n:UInt64}) "
            "WHERE number % 1000003 != 0 AND NOT (number BETWEEN 1000010 AND 1000059)",
            parameters={"c": COMPANY, "g": GATEWAY, "f": first, "n": count}, settings={"max_execution_time": 600})


async def _work(stack: Stack, records: int, requests: int) -> int:
    ch = await clients.clickhouse(stack.settings)
    started = time.perf_counter()
    await _fill(ch, records)
    print(f"stored {records:,} numbered calls in {time.perf_counter() - started:.1f} s")
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        (found,) = await completeness(ch, COMPANY, 100, GATEWAY)
        timings.append((time.perf_counter() - began) * 1000)
    print(f"watermark {found.watermark:,}, highest {found.highest:,}, missing {found.highest - found.stored:,}, "
          f"gaps listed {len(found.gaps)}")
    timings.sort()
    print(f"completeness of one gateway: p50 {statistics.median(timings):.1f} ms, "
          f"p99 {timings[int(len(timings) * 0.99) - 1]:.1f} ms ({requests} calls)")
    sizes = await ch.query("SELECT table, sum(data_compressed_bytes) FROM system.parts WHERE active "
                           "AND table LIKE 'gateway_blocks%' GROUP BY table")
    columns = await ch.query("SELECT sum(data_compressed_bytes) FROM system.parts_columns WHERE active "
                             "AND table LIKE 'calls%' AND column IN ('gateway_id', 'gateway_seq')")
    print(f"gateway_blocks on disk: {sum(r[1] for r in sizes.result_rows):,} bytes; "
          f"calls' gateway columns: {columns.result_rows[0][0]:,} bytes")
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
