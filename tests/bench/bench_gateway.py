"""`make bench-gateway`: the proxy's added latency against the upstream called directly, and the
emitter's maximum records/s from one process, in one run.

On its own embedded broker (no ClickHouse needed):

  (a) latency: an upstream aiohttp API (its own process, ~2 KB JSON answers) is called directly and
      through `trilha gateway` (a real process, recording every call), alternating blocks of
      requests on one keep-alive connection so both see the same machine state; p50/p99 of each and
      the difference. Then the same at a concurrency of --concurrency, in requests/s. Every proxied
      call's record is counted on the topic afterwards.
  (b) the emitter: --records realistic records (RecordFactory) emitted from one process as fast as
      it will take them; the cost of one `emit` (what an API call pays) and records/s until Kafka
      acknowledged the last one.

Options: --requests N (per target), --records N, --concurrency C.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web

from services.gateway.emitter import Emitter
from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from services.stack.records import RecordFactory
from tests.stack import Stack, free_port

PAYLOAD = {"Datasets": "basic_data", "q": "doc{52998224725}", "Limit": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per target")
    parser.add_argument("--records", type=int, default=100_000, help="records the emitter benchmark emits")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the throughput round")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    settings = Settings.from_env({}, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
                                 kafka_idempotence=False, data_dir=str(data_dir), kafka_topic="bench-gateway",
                                 log_level="warning")
    stack = Stack(settings, data_dir)
    try:
        stack.spawn("broker", "broker")
        if not wait_for_port("127.0.0.1", int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1]), 60):
            raise RuntimeError(stack.log("broker"))
        asyncio.run(clients.ensure_topics(settings, settings.kafka_topic, "bench-emitter"))
        asyncio.run(proxy_latency(stack, args))
        asyncio.run(emitter_throughput(settings, args))
    finally:
        for name in list(stack.procs)[::-1]:
            stack.stop(name)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


# -- (a) the proxy ------------------------------------------------------------------------------------

def _upstream(port: int) -> None:
    """The API behind the proxy: a realistic ~2 KB JSON answer, as fast as aiohttp serves it."""
    factory = RecordFactory(seed=1)
    answer = web.json_response({"Result": factory.record()["result"]["Result"], "Status": {"code": 0}})
    body = answer.body

    async def pessoas(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/pessoas", pessoas)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _timed(http: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.post(url, json=PAYLOAD, headers={"X-Trilha-Company": "bench"}) as answer:
            await answer.read()
            assert answer.status == 200, answer.status
        times.append((time.perf_counter() - started) * 1000)
    return times


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _throughput(url: str, concurrency: int, seconds: float) -> tuple[int, float]:
    """Requests completed by `concurrency` keep-alive clients in about `seconds`, and the time taken."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        async with aiohttp.ClientSession() as http:
            while time.perf_counter() < deadline:
                async with http.post(url, json=PAYLOAD, headers={"X-Trilha-Company": "bench"}) as answer:
                    await answer.read()
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done, time.perf_counter() - started


async def proxy_latency(stack: Stack, args: argparse.Namespace) -> None:
    up_port, proxy_port = free_port(), free_port()
    upstream = multiprocessing.get_context("spawn").Process(target=_upstream, args=(up_port,), daemon=True)
    upstream.start()
    stack.spawn("gateway", "gateway", "--upstream", f"http://127.0.0.1:{up_port}", "--listen",
                f"127.0.0.1:{proxy_port}", "--company", "bench", "--name", "bench")
    try:
        for port, name in ((up_port, "upstream"), (proxy_port, "gateway")):
            if not await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 60):
                raise RuntimeError(f"{name} did not start: {stack.log('gateway')}")
        direct_url, proxy_url = f"http://127.0.0.1:{up_port}/pessoas", f"http://127.0.0.1:{proxy_port}/pessoas"
        direct: list[float] = []
        proxied: list[float] = []
        block = 100
        gateway, api = psutil.Process(stack.procs["gateway"].pid), psutil.Process(upstream.pid)
        async with aiohttp.ClientSession() as http:
            await _timed(http, direct_url, 200)  # warm-up: connections, caches
            await _timed(http, proxy_url, 200)
            cpu_before, api_before = sum(gateway.cpu_times()[:2]), sum(api.cpu_times()[:2])
            for _ in range(max(1, args.requests // block)):
                direct += await _timed(http, direct_url, block)
                proxied += await _timed(http, proxy_url, block)
            cpu_ms = (sum(gateway.cpu_times()[:2]) - cpu_before) * 1000 / len(proxied)
            api_ms = (sum(api.cpu_times()[:2]) - api_before) * 1000 / (len(proxied) + len(direct))
        print(f"proxy latency, {len(direct):,} sequential requests per target on one keep-alive connection "
              f"(~{len(str(PAYLOAD))} B JSON in, ~2 KB JSON out; every proxied call recorded to Kafka)")
        print(f"  {'':10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        for label, values in (("direct", direct), ("proxy", proxied)):
            print(f"  {label:10} {_pct(values, 50):8.3f} {_pct(values, 90):8.3f} {_pct(values, 99):8.3f} "
                  f"{statistics.fmean(values):8.3f}")
        print(f"  {'added':10} {_pct(proxied, 50) - _pct(direct, 50):8.3f} "
              f"{_pct(proxied, 90) - _pct(direct, 90):8.3f} {_pct(proxied, 99) - _pct(direct, 99):8.3f} "
              f"{statistics.fmean(proxied) - statistics.fmean(direct):8.3f}")
        print(f"  CPU per call: gateway {cpu_ms:.3f} ms (recording included), the upstream API itself "
              f"{api_ms:.3f} ms; machine load {os.getloadavg()[0]:.1f} (wall-clock figures carry it too)")
        direct_done, direct_s = await _throughput(direct_url, args.concurrency, 5)
        proxy_done, proxy_s = await _throughput(proxy_url, args.concurrency, 5)
        print(f"throughput at concurrency {args.concurrency}: direct {direct_done / direct_s:,.0f} req/s, "
              f"through the proxy {proxy_done / proxy_s:,.0f} req/s")
        proxied_total = 200 + len(proxied) + proxy_done
    finally:
        stack.stop("gateway")  # the emitter flushes on SIGTERM
        upstream.terminate()
        upstream.join(10)
    records = await _count(stack.settings, stack.settings.kafka_topic, proxied_total)
    print(f"  records on the topic: {records:,} for {proxied_total:,} proxied calls")


async def _count(settings: Settings, topic: str, expected: int, timeout: float = 60) -> int:
    """Distinct records on the topic (counting, not end offsets: they lag on the embedded broker)."""
    import orjson

    consumer = clients.kafka_consumer(settings, topic, group_id=None)
    await consumer.start()
    ids: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while len(ids) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                ids.update(orjson.loads(m.value)["query_id"] for m in messages)
    finally:
        await consumer.stop()
    return len(ids)


# -- (b) the emitter ----------------------------------------------------------------------------------

async def emitter_throughput(settings: Settings, args: argparse.Namespace) -> None:
    print(f"generating {args.records:,} records ...", flush=True)
    factory = RecordFactory(seed=11, companies=8)
    base = factory.records(min(args.records, 5000))
    records = [dict(base[n % len(base)], query_id=f"{base[n % len(base)]['query_id'][:24]}{n:012d}")
               for n in range(args.records)]
    size = sum(len(str(r)) for r in records[:1000]) / 1000
    bench = replace(settings, kafka_topic="bench-emitter")
    emitter = await Emitter(bench, name="bench-emitter", memory_max_bytes=1024 ** 3,
                            spill_max_bytes=4 * 1024 ** 3).start()
    costs: list[float] = []
    started = time.perf_counter()
    for n, record in enumerate(records):
        t = time.perf_counter()
        emitter.emit_nowait(record)
        costs.append(time.perf_counter() - t)
        if n % 500 == 499:
            await asyncio.sleep(0)  # an API's event loop serves other work between calls
    emitted = time.perf_counter() - started
    assert await emitter.flush(300)
    elapsed = time.perf_counter() - started
    stats = emitter.stats
    await emitter.close()
    costs_us = [c * 1e6 for c in costs]
    print(f"emitter, one process, {args.records:,} records of ~{size / 1024:.1f} KB, zstd, acks=all:")
    print(f"  emit() cost: p50 {_pct(costs_us, 50):.1f} us, p99 {_pct(costs_us, 99):.1f} us "
          f"(validation and encoding included)")
    print(f"  all emitted in {emitted:.2f} s; all acknowledged by Kafka after {elapsed:.2f} s: "
          f"{stats.delivered / elapsed:,.0f} records/s (spilled {stats.spilled}, dropped {stats.dropped})")


if __name__ == "__main__":
    raise SystemExit(main())
