"""`make bench-query` (first part): Events API latency through HTTP at 500,000 and 5,000,000 records.

On its own embedded stack, `tests.bench.dataset.load` writes 500,000 records (one every 6 s, the
newest now: ~35 days), a real `trilha query` process serves them, and these are timed one request
at a time (p50/p99 in ms):

  QueryId             a different stored record each time, no QueryDate
  QueryId+QueryDate   the same, with the record's day as QueryDate
  q page 1            a document with thousands of calls (≥ 200 pages of 50), first page
  q page 200          the same search, page 200 (its cursor reached by walking pages 1-199)
  Tags 1 tag          {"origem": "batch"} (a third of all records), first page
  Tags 2 tags         {"env": "hml", "origem": "batch"} (two dense tags intersected), first page

Then 4,500,000 older records are added (history grows backwards to ~1 year) and the same is
measured at 5,000,000. Printed: both sizes, the 5M/500k ratio, and page 200 / page 1 at each size.
Targets: page 200 within 1.5x of page 1; QueryId at 5M within 2x of 500k.

Options: --small N, --large N (record counts), --requests N (per measurement), --keep.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import psutil
from aiohttp import ClientSession, ClientTimeout

from query.access import tokens
from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from tests.bench import dataset
from tests.bench.harness import in_own_stack
from tests.stack import Stack, free_port

STEP = timedelta(seconds=6)
COMPANY = "company-1"
HOT_Q = f"doc{{{dataset.HOT_DOCS[0]}}}"
SEARCHES = {
    "q page 1": {"q": HOT_Q, "PageSize": 50},
    "Tags 1 tag": {"Tags": {"origem": "batch"}, "PageSize": 50},
    "Tags 2 tags": {"Tags": {"env": "hml", "origem": "batch"}, "PageSize": 50},
}
SERVERS: list[psutil.Process] = []  # the query service and ClickHouse endpoint processes
Figures = dict[str, tuple[float, float, float]]  # p50 ms, p99 ms, server CPU ms per request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--reuse", metavar="DIR", help="measure again the data a --keep run left in DIR")
    args = parser.parse_args(argv)
    work = remeasure if args.reuse else run
    return in_own_stack("query", lambda stack: work(stack, args), keep=args.keep, reuse=args.reuse)


async def _start_query(stack: Stack) -> tuple[Settings, dict[str, str]]:
    """A `trilha query` process for the measurements, its tokens, and the processes whose CPU counts."""
    settings = replace(stack.settings, query_port=free_port())
    query_proc = stack.spawn("query-bench", "query", settings=settings)
    if not wait_for_port("127.0.0.1", settings.query_port, 60):
        raise SystemExit(f"trilha query did not start:\n{stack.log('query-bench')}")
    SERVERS[:] = [psutil.Process(query_proc.pid)] + [psutil.Process(p.pid) for n, p in stack.procs.items()
                                                     if n.startswith("clickhouse")]
    return settings, await _tokens(settings)


async def run(stack: Stack, args: argparse.Namespace) -> int:
    print(f"loading {args.small:,} records ...", flush=True)
    first = await dataset.load(stack.settings, args.small, step=STEP)
    print(f"  {first.seconds:.0f}s ({args.small / first.seconds:,.0f} records/s)", flush=True)
    settings, headers = await _start_query(stack)
    try:
        async with ClientSession(base_url=f"http://127.0.0.1:{settings.query_port}",
                                 timeout=ClientTimeout(total=600)) as http:
            small = await measure(http, headers, first.sample, args.requests)
            grow = args.large - args.small
            print(f"adding {grow:,} older records ...", flush=True)
            more = await dataset.load(stack.settings, grow, end=first.start - STEP, step=STEP, seed=12)
            print(f"  {more.seconds:.0f}s ({grow / more.seconds:,.0f} records/s)", flush=True)
            large = await measure(http, headers, first.sample + more.sample, args.requests)
    finally:
        stack.stop("query-bench")
    report(args, small, large)
    return 0


async def remeasure(stack: Stack, args: argparse.Namespace) -> int:
    """Measure a kept data set again (e.g. when the shared machine is quieter)."""
    settings, headers = await _start_query(stack)
    ch = await clients.clickhouse(settings)
    try:
        rows = (await ch.query("SELECT count() FROM calls")).result_rows[0][0]
        picked = await ch.query("SELECT company_id, query_id, timestamp FROM calls ORDER BY rand() LIMIT 1000")
    finally:
        await ch.close()
    print(f"measuring {rows:,} records kept in {args.reuse}", flush=True)
    try:
        async with ClientSession(base_url=f"http://127.0.0.1:{settings.query_port}",
                                 timeout=ClientTimeout(total=600)) as http:
            figures = await measure(http, headers, [tuple(r) for r in picked.result_rows], args.requests)
    finally:
        stack.stop("query-bench")
    ratio = figures["q page 200"][0] / figures["q page 1"][0]
    print(f"q page 200 / page 1: {ratio:.2f}x p50, {figures['q page 200'][2] / figures['q page 1'][2]:.2f}x CPU")
    return 0


async def _tokens(settings: Any) -> dict[str, dict[str, str]]:
    ch = await clients.clickhouse(settings)
    try:
        return {company: {"Authorization": f"Bearer {(await tokens.create(ch, company, name='bench'))[1]}"}
                for company in (f"company-{n + 1}" for n in range(dataset.COMPANIES))}
    finally:
        await ch.close()


async def _post(http: ClientSession, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with http.post("/events", data=orjson.dumps(body), headers=headers) as response:
        raw = await response.read()
    elapsed = (time.perf_counter() - started) * 1000
    answer = orjson.loads(raw)
    if response.status != 200:
        raise SystemExit(f"{body} answered {response.status}: {answer}")
    return elapsed, answer


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


async def _timed(http: ClientSession, bodies: list[tuple[dict[str, Any], dict[str, str]]], check: Any = None,
                 ) -> tuple[float, float, float]:
    """p50 and p99 wall ms, and CPU ms per request spent by ClickHouse and the query service together
    (the machine is shared: CPU per request shows the work done, whatever else runs)."""
    for body, headers in bodies[:5]:  # warm-up: connections, caches
        await _post(http, body, headers)
    times = []
    cpu_before = _cpu_seconds(SERVERS)
    for body, headers in bodies:
        elapsed, answer = await _post(http, body, headers)
        if check is not None:
            check(answer)
        times.append(elapsed)
    cpu = (_cpu_seconds(SERVERS) - cpu_before) * 1000 / len(bodies)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return statistics.median(times), cuts[98], cpu


async def measure(http: ClientSession, headers: dict[str, dict[str, str]], sample: list[Any],
                  requests: int) -> Figures:
    rng = random.Random(5)
    picks = [sample[rng.randrange(len(sample))] for _ in range(requests)]

    def one(answer: dict[str, Any]) -> None:
        assert len(answer["Result"]) == 1

    def full(answer: dict[str, Any]) -> None:
        assert len(answer["Result"]) == 50 and answer["Cursor"]

    figures: Figures = {}
    figures["QueryId"] = await _timed(http, [({"QueryId": qid}, headers[c]) for c, qid, _ in picks], one)
    figures["QueryId+QueryDate"] = await _timed(
        http, [({"QueryId": qid, "QueryDate": ts.strftime("%Y-%m-%d")}, headers[c]) for c, qid, ts in picks], one)
    for name, body in SEARCHES.items():
        figures[name] = await _timed(http, [(body, headers[COMPANY])] * max(50, requests // 2), full)
    cursor, walk = await _walk_to_page(http, headers[COMPANY], 200)
    print(f"  walked pages 1-199 of {HOT_Q}: p50 {statistics.median(walk):.1f} ms per page", flush=True)
    figures["q page 200"] = await _timed(http, [({**SEARCHES["q page 1"], "Cursor": cursor},
                                                  headers[COMPANY])] * max(50, requests // 2), full)
    for name, (p50, p99, cpu) in figures.items():
        print(f"  {name:<20} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   server CPU {cpu:6.1f} ms/request", flush=True)
    return figures


async def _walk_to_page(http: ClientSession, headers: dict[str, str], page: int) -> tuple[str, list[float]]:
    cursor, times = None, []
    for _ in range(page - 1):
        body = {**SEARCHES["q page 1"], **({"Cursor": cursor} if cursor else {})}
        elapsed, answer = await _post(http, body, headers)
        times.append(elapsed)
        cursor = answer["Cursor"]
        if cursor is None:
            raise SystemExit(f"{HOT_Q} has fewer than {page} pages: load more records")
    assert cursor is not None
    return cursor, times


def report(args: argparse.Namespace, small: Figures, large: Figures) -> None:
    a, b = f"{args.small / 1e6:g}M", f"{args.large / 1e6:g}M"
    print(f"\nEvents API through HTTP, one request at a time (ms; cpu = server CPU ms per request)\n{'':<20}"
          f"{a + ' p50':>10}{a + ' p99':>10}{a + ' cpu':>10}{b + ' p50':>10}{b + ' p99':>10}{b + ' cpu':>10}"
          f"{'p50 ' + b + '/' + a:>14}{'cpu ' + b + '/' + a:>14}")
    for name in small:
        (p50a, p99a, cpua), (p50b, p99b, cpub) = small[name], large[name]
        print(f"{name:<20}{p50a:>10.1f}{p99a:>10.1f}{cpua:>10.1f}{p50b:>10.1f}{p99b:>10.1f}{cpub:>10.1f}"
              f"{p50b / p50a:>13.2f}x{cpub / cpua:>13.2f}x")
    for label, figures in ((a, small), (b, large)):
        ratio = figures["q page 200"][0] / figures["q page 1"][0]
        cpu = figures["q page 200"][2] / figures["q page 1"][2]
        print(f"q page 200 / page 1 at {label}: {ratio:.2f}x p50, {cpu:.2f}x CPU (target <= 1.5x)")
    for name in ("QueryId", "QueryId+QueryDate"):
        print(f"{name} {b}/{a}: {large[name][0] / small[name][0]:.2f}x p50, {large[name][2] / small[name][2]:.2f}x CPU "
              "(target <= 2x)")


if __name__ == "__main__":
    raise SystemExit(main())
