"""`make bench-abuse`: does one company's flood delay another company's lookups?

On its own embedded stack (loopback only), `tests.bench.dataset.load` writes records of three
companies and a real `trilha query` process serves them with its default fair-use settings.
Company B (company-2, from 127.0.0.3) makes normal lookups one at a time — a QueryId, then a
`q` page — first alone, then while company A (company-1, from 127.0.0.2) floods:

  bad tokens     random well-formed `trl_…` tokens (answered 401, then 429 per address)
  Tags searches  eight concurrent 32-term Tags searches, again and again
  CSV exports    four concurrent exports of all of A's records, read to the end
  webhooks       four daily schedules (`POST /reports/schedules`) whose webhook is a socket on
                 127.0.0.1 that accepts and never answers, run by a real `trilha scheduler`
                 started beside the query service with its clock (`--now`) at their minute;
                 B has a directory schedule due the same minute

Both processes get TRILHA_WEBHOOK_ALLOW=127.0.0.1/32 (so the blackhole is accepted and reached),
a 10 s webhook timeout and one attempt per run (so the bench stays bounded).

Printed: B's p50/p99 without and with the flood, their ratio (aim: p99 within 2x), what A's
requests were answered, the count of 5xx answers over everything (aim: 0), how long after the
scheduler's start B's report was delivered (aim: well under A's 10 s webhook timeout), and how A's
scheduled runs ended (expected: abandoned, timed out).

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
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tokens
from query.reports import schedules
from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from tests.bench import dataset
from tests.bench.harness import in_own_stack
from tests.query import report_support as rs
from tests.stack import Stack, free_port

A, B = "company-1", "company-2"
A_ADDRESS, B_ADDRESS = "127.0.0.2", "127.0.0.3"  # all of 127.0.0.0/8 is loopback on Linux
LOOPBACK = "127.0.0.1/32"  # TRILHA_WEBHOOK_ALLOW of both processes: A's blackhole listens there
WEBHOOKS, WEBHOOK_TIMEOUT_S = 4, 10.0  # A's blackholed schedules; each run gives up after this long
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
    settings = replace(stack.settings, query_port=free_port(), webhook_allow=LOOPBACK,
                       webhook_timeout_s=WEBHOOK_TIMEOUT_S, report_max_attempts=1)
    stack.spawn("query-abuse", "query", settings=settings)
    if not wait_for_port("127.0.0.1", settings.query_port, 60):
        raise SystemExit(f"trilha query did not start:\n{stack.log('query-abuse')}")
    ch = await clients.clickhouse(settings)
    try:
        headers = {c: {"Authorization": f"Bearer {(await tokens.create(ch, c, name='bench'))[1]}"} for c in (A, B)}
        base = f"http://127.0.0.1:{settings.query_port}"
        ids = [query_id for company, query_id, *_ in loaded.sample if company == B]
        async with _session(base, B_ADDRESS) as b_http, _session(base, A_ADDRESS) as a_http:
            b_statuses: Statuses = Counter()
            quiet = await lookups(b_http, headers[B], ids, args.requests, b_statuses)
            a_statuses: Statuses = Counter()
            stop = asyncio.Event()
            flood = [asyncio.create_task(loop(stop)) for loop in floods(a_http, headers[A], a_statuses)]
            hooks = asyncio.create_task(webhook_flood(stop, stack, settings, ch, {A: a_http, B: b_http}, headers,
                                                      {A: a_statuses, B: b_statuses}))
            await asyncio.sleep(2.0)  # let the flood reach its steady state
            loud = await lookups(b_http, headers[B], ids, args.requests, b_statuses)
            stop.set()
            await asyncio.gather(*flood)
            scheduled = await hooks
    finally:
        await ch.close()
        stack.stop("query-abuse")
    report(quiet, loud, a_statuses, b_statuses)
    print(*scheduled, sep="\n")
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
    return [*bad, *tags, *exports]


async def webhook_flood(stop: asyncio.Event, stack: Stack, settings: Settings, ch: AsyncClient,
                        http: dict[str, ClientSession], headers: dict[str, dict[str, str]],
                        statuses: dict[str, Statuses]) -> list[str]:
    """A's blackholed webhooks beside B's report, run by a real `trilha scheduler` during the flood.

    A creates WEBHOOKS schedules whose webhook is a socket on 127.0.0.1 that accepts and never
    answers, B one to a directory, all through `POST /reports/schedules` and due the same minute;
    the scheduler starts with its clock at that minute (`--now`). B's report must not wait for A's
    webhooks to time out. Returns the lines to print: B's delivery time and how A's runs ended."""
    async with rs.blackhole() as hole:
        slot = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)
        hooked = [await _schedule(http[A], headers[A], slot, {"type": "webhook", "url": hole}, statuses[A])
                  for _ in range(WEBHOOKS)]
        mine = await _schedule(http[B], headers[B], slot, {"type": "directory"}, statuses[B])
        began = datetime.now(UTC)
        stack.spawn("scheduler-abuse", "scheduler", "--now", (slot + timedelta(seconds=30)).isoformat(),
                    settings=settings)
        try:
            b_run = (await _settled(ch, [mine], 60.0))[mine]
            await stop.wait()
            a_runs = await _settled(ch, hooked, 2 * WEBHOOKS * WEBHOOK_TIMEOUT_S + 30)
        finally:
            stack.stop("scheduler-abuse")
    b_took = (b_run[2] - began).total_seconds() if b_run[0] == "delivered" else float("nan")
    outcomes = Counter(f"{status}: {error}" if error else status for status, error, _ in a_runs.values())
    return [f"company B's scheduled report: {b_run[0]} {b_took:.1f} s after the scheduler started, with "
            f"{WEBHOOKS} of A's webhooks blackholed (waiting for them would take >= {WEBHOOK_TIMEOUT_S:.0f} s)",
            f"company A's scheduled runs: {dict(outcomes)}"]


async def _schedule(http: ClientSession, headers: dict[str, str], slot: datetime, destination: dict[str, str],
                    seen: Statuses) -> str:
    """A daily schedule due at `slot`, created through the API (retried after a 429); its id."""
    body = {"recurrence": {"frequency": "daily", "time": slot.strftime("%H:%M"), "timezone": "UTC"},
            "range": "previous_day", "destination": destination}
    for _ in range(20):
        async with http.post("/reports/schedules", json=body, headers=headers) as answer:
            created = await answer.json(content_type=None)
        seen[answer.status] += 1
        if answer.status == 201:
            return str(created["id"])
        await asyncio.sleep(min(float(answer.headers.get("Retry-After", "1")), 1.0))
    raise SystemExit(f"schedule not created: {answer.status} {created}")


async def _settled(ch: AsyncClient, ids: list[str], timeout: float) -> dict[str, tuple[str, str, datetime]]:
    """Each run's last record (status, error, recorded_at) once every run has an outcome (or at `timeout`)."""
    deadline = time.monotonic() + timeout
    latest: dict[str, tuple[str, str, datetime]] = {}
    while time.monotonic() < deadline:
        result = await ch.query(
            "SELECT schedule_id, argMax(status, recorded_at), argMax(error, recorded_at), max(recorded_at) "
            "FROM report_runs WHERE schedule_id IN {ids:Array(String)} GROUP BY schedule_id",
            parameters={"ids": ids})
        latest = {sid: (status, error, at.replace(tzinfo=UTC)) for sid, status, error, at in result.result_rows}
        if len(latest) == len(ids) and all(status in schedules.TERMINAL for status, *_ in latest.values()):
            break
        await asyncio.sleep(0.2)
    return {sid: latest.get(sid, ("no outcome", f"none within {timeout:.0f} s", datetime.now(UTC)))
            for sid in ids}


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
