"""`make bench-abuse`: does one company's flood delay another company's lookups?

On its own embedded stack (loopback only), `tests.bench.dataset.load` writes records of three
companies and a real `trilha query` process serves them with its default fair-use settings.
Company B (company-2, from 127.0.0.3) makes normal lookups one at a time — a QueryId, then a
`q` page — first alone, then while company A (company-1, from 127.0.0.2) floods:

  bad tokens     random well-formed `trl_…` tokens (answered 401, then 429 per address)
  Tags searches  eight concurrent 32-term Tags searches, again and again
  CSV exports    four concurrent exports of all of A's records, read to the end
  webhooks       `webhook_flood` below: the hook for blackholed schedule webhooks (see there)

Printed: B's p50/p99 without and with the flood, their ratio (aim: p99 within 2x), what A's
requests were answered, and the count of 5xx answers over everything (aim: 0).

Options: --records N, --requests N (B's lookups per phase), --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from query import tokens
from services import clients
from services.netcheck import wait_for_port
from tests.bench import dataset
from tests.bench.harness import in_own_stack
from tests.stack import Stack, free_port

A, B = "company-1", "company-2"
A_ADDRESS, B_ADDRESS = "127.0.0.2", "127.0.0.3"  # all of 127.0.0.0/8 is loopback on Linux
HEAVY_TAGS = {"env": "prod", "origem": "batch", **{f"k{n}": f"v{n}" for n in range(30)}}  # 32 terms
Statuses = Counter[int]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=300, help="B's timed lookups per phase")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    return in_own_stack("abuse", lambda stack: run(stack, args), keep=args.keep)


async def run(stack: Stack, args: argparse.Namespace) -> int:
    print(f"loading {args.records:,} records of {dataset.COMPANIES} companies ...", flush=True)
    loaded = await dataset.load(stack.settings, args.records)
    settings = replace(stack.settings, query_port=free_port())
    stack.spawn("query-abuse", "query", settings=settings)
    if not wait_for_port("127.0.0.1", settings.query_port, 60):
        raise SystemExit(f"trilha query did not start:\n{stack.log('query-abuse')}")
    try:
        ch = await clients.clickhouse(settings)
        headers = {c: {"Authorization": f"Bearer {(await tokens.create(ch, c, name='bench'))[1]}"} for c in (A, B)}
        await ch.close()
        base = f"http://127.0.0.1:{settings.query_port}"
        ids = [query_id for company, query_id, *_ in loaded.sample if company == B]
        async with _session(base, B_ADDRESS) as b_http, _session(base, A_ADDRESS) as a_http:
            b_statuses: Statuses = Counter()
            quiet = await lookups(b_http, headers[B], ids, args.requests, b_statuses)
            a_statuses: Statuses = Counter()
            stop = asyncio.Event()
            flood = [asyncio.create_task(loop(stop)) for loop in floods(a_http, headers[A], a_statuses)]
            await asyncio.sleep(2.0)  # let the flood reach its steady state
            loud = await lookups(b_http, headers[B], ids, args.requests, b_statuses)
            stop.set()
            await asyncio.gather(*flood)
    finally:
        stack.stop("query-abuse")
    report(quiet, loud, a_statuses, b_statuses)
    return 0


def _session(base: str, address: str) -> ClientSession:
    return ClientSession(base_url=base, timeout=ClientTimeout(total=120),
                         connector=TCPConnector(local_addr=(address, 0), limit=64))


async def lookups(http: ClientSession, headers: dict[str, str], ids: list[str], count: int,
                  statuses: Statuses) -> list[float]:
    """B's normal work, one request at a time: a QueryId lookup, then a q page, alternately."""
    rng, took = random.Random(5), []
    for n in range(count):
        body = {"QueryId": rng.choice(ids)} if n % 2 == 0 else {"q": f"doc{{{dataset.HOT_DOCS[1]}}}", "PageSize": 10}
        started = time.perf_counter()
        async with http.post("/events", data=orjson.dumps(body), headers=headers) as answer:
            await answer.read()
        took.append((time.perf_counter() - started) * 1000)
        statuses[answer.status] += 1
    return took


def floods(http: ClientSession, headers: dict[str, str], statuses: Statuses) -> list[Callable[[asyncio.Event],
                                                                                              Awaitable[None]]]:
    """Company A's loops, each running until told to stop."""
    bad = [lambda stop: _repeat(stop, lambda: _bad_token(http, statuses)) for _ in range(4)]
    tags = [lambda stop: _repeat(stop, lambda: _post(http, {"Tags": HEAVY_TAGS, "PageSize": 50}, headers, statuses))
            for _ in range(8)]
    exports = [lambda stop: _repeat(stop, lambda: _export(http, headers, statuses)) for _ in range(4)]
    return [*bad, *tags, *exports, *webhook_flood(http, headers, statuses)]


def webhook_flood(http: ClientSession, headers: dict[str, str],
                  statuses: Statuses) -> list[Callable[[asyncio.Event], Awaitable[None]]]:
    """The hook for blackholed schedule webhooks: none yet.

    Deliveries run in `trilha scheduler`, not in the query service, and a webhook to 127.0.0.1
    needs `TRILHA_WEBHOOK_ALLOW=127.0.0.1/32` (being added with the webhook checks). Once both are
    in, return loops here that create schedules of A whose webhook is a listening socket on
    127.0.0.1 that never answers, and start the scheduler beside the query service.
    """
    return []


async def _repeat(stop: asyncio.Event, once: Callable[[], Awaitable[None]]) -> None:
    while not stop.is_set():
        try:
            await once()
        except (TimeoutError, OSError) as exc:  # a refused or cut connection is a finding, not a crash
            print(f"  flood request failed: {type(exc).__name__}", flush=True)


async def _post(http: ClientSession, body: dict[str, Any], headers: dict[str, str], seen: Statuses) -> None:
    async with http.post("/events", data=orjson.dumps(body), headers=headers) as answer:
        await answer.read()
    seen[answer.status] += 1
    if answer.status == 429:
        await asyncio.sleep(min(float(answer.headers.get("Retry-After", "1")), 1.0))


async def _bad_token(http: ClientSession, seen: Statuses) -> None:
    token = f"trl_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    await _post(http, {"QueryId": "x"}, {"Authorization": f"Bearer {token}"}, seen)


async def _export(http: ClientSession, headers: dict[str, str], seen: Statuses) -> None:
    async with http.get("/reports/api-logs.csv", headers=headers) as answer:
        async for _ in answer.content.iter_chunked(1 << 16):
            pass
    seen[answer.status] += 1
    if answer.status == 429:
        await asyncio.sleep(1.0)


def _figures(took: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(took, n=100)
    return statistics.median(took), cuts[98]


def report(quiet: list[float], loud: list[float], a: Statuses, b: Statuses) -> None:
    (q50, q99), (l50, l99) = _figures(quiet), _figures(loud)
    print(f"\ncompany B, {len(quiet)} lookups per phase (QueryId and q, alternately), ms:")
    print(f"  {'':<14}{'p50':>9}{'p99':>9}")
    print(f"  {'alone':<14}{q50:>9.1f}{q99:>9.1f}")
    print(f"  {'during flood':<14}{l50:>9.1f}{l99:>9.1f}")
    print(f"  {'ratio':<14}{l50 / q50:>8.2f}x{l99 / q99:>8.2f}x   (aim: p99 within 2x)")
    print(f"company A's flood answered: {dict(sorted(a.items()))}")
    print(f"company B answered: {dict(sorted(b.items()))}")
    errors = sum(n for status, n in (a + b).items() if status >= 500)
    print(f"5xx answers: {errors}   (aim: 0)")


if __name__ == "__main__":
    raise SystemExit(main())
