"""`make bench-query` (second part): the API logs report on a month of records.

On its own embedded stack, `tests.bench.dataset.load` writes ~3.1 million records over ~36 days
(three companies, so one company holds a little over a million). A real `trilha query` process
then serves:

  (a) report pages with three filters over the last month (first pages, then pages reached by
      following `next_cursor`): p50/p99 latency;
  (b) the CSV export of every row of one company (≥ 1,000,000 rows) and of a ~200,000-row slice:
      rows/s, and the query-service process's peak RSS while streaming (sampled with psutil every
      10 ms) — the two peaks are compared to show memory does not grow with the row count;
  (c) the dashboard stats over the month (one call, for scale).

Options: --records N (default 3,100,000), --pages N (default 100 per kind), --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from aiohttp import ClientSession, ClientTimeout

from query.access import tokens
from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from tests.bench import dataset
from tests.bench.harness import in_own_stack
from tests.stack import Stack, free_port

COMPANY = "company-1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3_100_000)
    parser.add_argument("--pages", type=int, default=100, help="page requests per kind")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    return in_own_stack("reports", lambda stack: run(stack, args), keep=args.keep)


async def run(stack: Stack, args: argparse.Namespace) -> int:
    end = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(days=36) / args.records
    print(f"loading {args.records:,} records over 36 days ...", flush=True)
    loaded = await dataset.load(stack.settings, args.records, end=end, step=step)
    print(f"  {loaded.seconds:.0f}s ({args.records / loaded.seconds:,.0f} records/s)")
    settings = replace(stack.settings, query_port=free_port())
    proc = stack.spawn("query-bench", "query", settings=settings)
    if not wait_for_port("127.0.0.1", settings.query_port, 60):
        raise SystemExit(f"trilha query did not start:\n{stack.log('query-bench')}")
    ch = await clients.clickhouse(settings)
    _, token = await tokens.create(ch, COMPANY, name="bench")
    await ch.close()
    base = f"http://127.0.0.1:{settings.query_port}"
    headers = {"Authorization": f"Bearer {token}"}
    month = {"from": (end - timedelta(days=30)).isoformat(), "until": end.isoformat()}
    try:
        async with ClientSession(base_url=base, headers=headers, timeout=ClientTimeout(total=3600)) as http:
            await pages(http, month, args.pages)
            await exports(http, psutil.Process(proc.pid), end)
            await stats(http, month)
    finally:
        stack.stop("query-bench")
    return 0


async def _get_json(http: ClientSession, path: str, params: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with http.get(path, params=params) as answer:
        body = await answer.json()
        if answer.status != 200:
            raise SystemExit(f"{path} answered {answer.status}: {body}")
    return time.perf_counter() - started, body


async def pages(http: ClientSession, month: dict[str, str], count: int) -> None:
    # company-1's clients (RecordFactory seed 11) include João Gonçalves and client-2 at 172.48.228.78.
    searches = {
        "resource + status class + client name": {"resource": "pessoas", "status": "2xx", "client": "joao"},
        "client_id + error + IP block": {"client_id": f"{COMPANY}-client-2", "error": "sim", "ip": "172.48.0.0/16"},
    }
    print(f"(a) report page (30 rows), three filters over the last 30 days, {count} requests per line:")
    for label, filters in searches.items():
        params = {**filters, **month}
        _, body = await _get_json(http, "/reports/api-logs", params)  # warm-up
        if body["next_cursor"] is None:
            raise SystemExit(f"{label}: fewer than one page of results; the dataset is too small")
        first = [(await _get_json(http, "/reports/api-logs", params))[0] for _ in range(count)]
        deeper: list[float] = []
        cursor = body["next_cursor"]
        while len(deeper) < count:
            seconds, body = await _get_json(http, "/reports/api-logs", {**params, "cursor": cursor})
            deeper.append(seconds)
            cursor = body["next_cursor"] or cursor
        print(f"    {label:<40} first page p50 {_ms(first, 50)} p99 {_ms(first, 99)}   "
              f"following cursors p50 {_ms(deeper, 50)} p99 {_ms(deeper, 99)}")


@dataclass
class Export:
    rows: int
    seconds: float
    peak_rss: int
    baseline_rss: int


async def export(http: ClientSession, proc: psutil.Process, params: dict[str, str]) -> Export:
    """Stream the CSV, counting lines as they arrive, while sampling the service's RSS."""
    baseline = proc.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    started, lines = time.perf_counter(), 0
    async with http.get("/reports/api-logs.csv", params=params) as answer:
        if answer.status != 200:
            raise SystemExit(f"CSV export answered {answer.status}: {await answer.text()}")
        tail = b""
        async for chunk in answer.content.iter_chunked(256 * 1024):
            lines += (tail + chunk[:1]).count(b"\r\n") + chunk.count(b"\r\n")  # a CRLF split between chunks
            tail = chunk[-1:]
    seconds = time.perf_counter() - started
    done.set()
    await sampler
    return Export(lines - 1, seconds, peak, baseline)


async def exports(http: ClientSession, proc: psutil.Process, end: datetime) -> None:
    print("(b) CSV export, every matching row streamed (separator ;, BOM), query-service RSS while streaming:")
    await export(http, proc, {"until": (end - timedelta(days=35, hours=12)).isoformat()})  # warm-up, small
    slice_ = {"from": (end - timedelta(days=7)).isoformat()}
    results = [("~200k rows (last 7 days)", await export(http, proc, slice_)),
               ("all rows of one company", await export(http, proc, {}))]
    for label, result in results:
        print(f"    {label:<26} {result.rows:>10,} rows in {result.seconds:6.1f}s = "
              f"{result.rows / result.seconds:>9,.0f} rows/s; RSS before {result.baseline_rss / 2**20:6.1f} MiB, "
              f"peak {result.peak_rss / 2**20:6.1f} MiB (+{(result.peak_rss - result.baseline_rss) / 2**20:.1f})")
    _, everything = await _get_json(http, "/reports/api-logs/stats", {})
    if everything["total"] != results[1][1].rows:
        raise SystemExit(f"the export has {results[1][1].rows:,} rows but the company has {everything['total']:,}")
    small, large = results[0][1], results[1][1]
    growth = (large.peak_rss - small.peak_rss) / 2**20
    print(f"    peak RSS difference, {large.rows / small.rows:.1f}x the rows: {growth:+.1f} MiB "
          f"({'constant memory' if abs(growth) < 16 else 'GROWS with row count'})")


async def stats(http: ClientSession, month: dict[str, str]) -> None:
    await _get_json(http, "/reports/api-logs/stats", month)
    runs = [(await _get_json(http, "/reports/api-logs/stats", month))[0] for _ in range(5)]
    _, body = await _get_json(http, "/reports/api-logs/stats", month)
    print(f"(c) stats over the last 30 days ({body['total']:,} records): median {_ms(runs, 50)} of 5 calls")


def _ms(values: list[float], pct: int) -> str:
    if pct == 50:
        return f"{statistics.median(values) * 1000:7.1f} ms"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] * 1000:7.1f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
