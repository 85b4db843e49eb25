"""Proofs' cost, in `make bench-ingest` and `make bench-query`.

--ingest: the same kind of records through a real `trilha ingest`, once without and once with a
  `trilha checkpoint` process running beside it (every 5 s, so several rounds fall inside the run),
  each on a fresh topic: both rates and their ratio (aim >= 0.9); then how fast the checkpointer
  alone turns stored records into leaves (its catch-up rate), which must stay above ingest's.
--query: N records loaded, one checkpoint round over them (timed), then QueryId lookups through a
  real `trilha query`, without and with `"Proof": true` (p50, p99), every proof checked.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout

from query.access import tokens
from services.proofs import checkpointer, keys, ledger, verify
from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from tests.bench import dataset
from tests.bench.bench_ingest import end_to_end
from tests.bench.harness import in_own_stack
from tests.ingest.support import produce, record_values
from tests.stack import Stack, free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest", action="store_true", help="ingest with and without proofs")
    parser.add_argument("--query", action="store_true", help="QueryId lookups with and without a proof")
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    work = ingest if args.ingest else lookups
    return in_own_stack("proofs", lambda stack: work(stack, args))


async def _catch_up(stack: Stack) -> tuple[int, float, float]:
    """Rounds until nothing new: leaves added, seconds taken, and this process's CPU seconds in
    them (the checkpointer's own work, whatever else loads the machine; ClickHouse's not included)."""
    kid, key = keys.current(keys.keys_dir(stack.settings))
    settings = replace(stack.settings, checkpoint_lag_s=0.0)
    ch = await clients.clickhouse(settings)
    try:
        before = await ledger.latest_checkpoint(ch)
        started, cpu = time.perf_counter(), time.process_time()
        while await checkpointer.run_round(ch, settings, kid, key) is not None:
            pass
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = await ledger.latest_checkpoint(ch)
        added = int(after["size"] if after else 0) - int(before["size"] if before else 0)
        return added, seconds, cpu
    finally:
        await ch.close()


async def ingest(stack: Stack, args: argparse.Namespace) -> int:
    stamp = int(time.time())
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for n, label in enumerate(("off", "on", "off", "on")):  # alternated: the shared machine's load drifts
        topic, company = f"bench-proofs-{label}-{n}-{stamp}", f"bench-{label}-{n}-{stamp}"
        settings = replace(stack.with_topic(topic), batch_max_age_s=1.0)
        await produce(settings, record_values(args.records, company, seed=stamp), compression="lz4")
        (stack.data_dir / "bench-worker.log").unlink(missing_ok=True)  # the run is timed from its log
        if label == "on":
            await _catch_up(stack)  # the "off" run's records are leaves already: only ingest's new ones count
            stack.spawn("bench-checkpoint", "checkpoint", settings=replace(
                settings, checkpoint_interval_s=5.0, checkpoint_lag_s=1.0))
        try:
            rate, steady, _, _ = await end_to_end(stack, settings, company, args.records, None, settle=False)
        finally:
            stack.stop("bench-checkpoint")
        rates[label].append(rate)
        print(f"ingest, proofs {label}: {rate:>10,.0f} records/s  ({steady:,.0f}/s steady)", flush=True)
    added, seconds, _ = await _catch_up(stack)
    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    print(f"mean of two runs each: proofs off {off:,.0f} records/s, on {on:,.0f} records/s; "
          f"ratio on/off: {on / off:.2f}  (aim >= 0.9)")
    rounds = stack.log("bench-checkpoint").count("checkpoint signed")
    print(f"checkpoint rounds during the 'on' runs: {rounds}; left to catch up after the last: {added:,} leaves "
          f"in {seconds:.1f}s")
    total, seconds, cpu = await _rebuild_rate(stack)
    print(f"checkpointer alone: {total / seconds:,.0f} leaves/s (JCS + hashes + inserts, {total:,} records), "
          f"{_per_leaf(cpu, total)}")
    return 0


def _per_leaf(cpu: float, leaves: int) -> str:
    return f"{cpu * 1e6 / max(leaves, 1):,.0f} µs of checkpointer CPU per leaf"


async def _rebuild_rate(stack: Stack) -> tuple[int, float, float]:
    """The checkpointer's own rate: a fresh batch of stored records made leaves in one go."""
    company = f"bench-rate-{int(time.time())}"
    ch = await clients.clickhouse(stack.settings)
    try:
        body = b"\n".join(record_values(50_000, company, seed=5))
        await ch.raw_insert("calls", None, body, fmt="JSONEachRow",
                            settings={"input_format_json_read_objects_as_strings": 1,
                                      "date_time_input_format": "best_effort"})
    finally:
        await ch.close()
    return await _catch_up(stack)


async def lookups(stack: Stack, args: argparse.Namespace) -> int:
    print(f"loading {args.records:,} records ...", flush=True)
    loaded = await dataset.load(stack.settings, args.records, progress=False)
    added, seconds, cpu = await _catch_up(stack)
    print(f"checkpoint over them: {added:,} leaves in {seconds:.1f}s ({added / seconds:,.0f} leaves/s, "
          f"{_per_leaf(cpu, added)})", flush=True)
    settings = replace(stack.settings, query_port=free_port())
    stack.spawn("query-proofs", "query", settings=settings)
    if not wait_for_port("127.0.0.1", settings.query_port, 60):
        raise SystemExit(f"trilha query did not start:\n{stack.log('query-proofs')}")
    ch = await clients.clickhouse(settings)
    headers = {c: {"Authorization": f"Bearer {(await tokens.create(ch, c, name='bench'))[1]}"}
               for c in {s[0] for s in loaded.sample}}
    await ch.close()
    sample = random.Random(5).sample(loaded.sample, min(args.requests, len(loaded.sample)))
    try:
        async with ClientSession(base_url=f"http://127.0.0.1:{settings.query_port}",
                                 timeout=ClientTimeout(total=60)) as http:
            public = await (await http.get("/.well-known/trilha-checkpoint-keys")).json()
            public_keys = {k["key_id"]: bytes.fromhex(k["public_key"]) for k in public["keys"]}
            for proof in (False, True):
                times = await _measure(http, headers, sample, proof, public_keys)
                print(f"QueryId lookup, proof {'on ' if proof else 'off'}: p50 {_pct(times, 50):.1f} ms, "
                      f"p99 {_pct(times, 99):.1f} ms  ({len(times)} requests)", flush=True)
    finally:
        stack.stop("query-proofs")
    return 0


async def _measure(http: ClientSession, headers: dict[str, dict[str, str]], sample: list[Any], proof: bool,
                   public_keys: dict[str, bytes]) -> list[float]:
    times = []
    for company, query_id, *_ in sample:
        body: dict[str, Any] = {"QueryId": query_id, **({"Proof": True} if proof else {})}
        started = time.perf_counter()
        async with http.post("/events", data=orjson.dumps(body), headers=headers[company]) as response:
            answer = await response.json()
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or (proof and any(p for _, p in verify.answer_problems(answer, public_keys))):
            raise SystemExit(f"lookup of {query_id} failed: {str(answer)[:500]}")
    return times


def _pct(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1]


if __name__ == "__main__":
    raise SystemExit(main())
