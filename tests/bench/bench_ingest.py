"""`make bench-ingest`: ingest throughput against a raw drain of the same topic, in one run.

On its own embedded stack: N realistic records (RecordFactory shapes, results of 200-800 bytes,
~1.1 KB each) are produced with lz4 to a fresh 4-partition topic; then

  (b) a raw drain: an aiokafka consumer (the worker's fetch settings) that does nothing with the
      records, from "ready to fetch" to the last record;
  (a) the pipeline end to end: a real `trilha ingest` process, from its partition assignment
      (its log line) to the last row visible in ClickHouse (also shown: from the first row
      visible to the last, which leaves out the first batch's fill and insert);
  (c) the ratio a/b (target: >= 0.5);
and, to show where the ceilings are:

* the CPU each process spent per record in the steady part of (a) (from the first row visible to
  the last), and the drain's own CPU per record;
* the worker's ratio: the drain's CPU per record over the worker's, i.e. what (a)/(b) would be if
  ClickHouse ran on cores of its own and the worker had one (pessimistic: measured while sharing);
* the decoder alone: the worker's per-record Python work (size check, JSON and contract) on one
  core, nothing else running;
* ClickHouse alone: the same kind of records inserted straight into `calls` (same JSONEachRow
  settings, 100k-row inserts, one at a time, no Kafka, no Python decoding), and its ratio to (b):
  (a) cannot exceed it on this machine;
* the CPU bill: ClickHouse's CPU per record also by its own accounting (`system.events`
  OSCPUVirtualTimeMicroseconds, summed over the shards: query and background threads, merges
  included), the whole pipeline's records per CPU-second (broker + worker + ClickHouse process
  CPU), and the floor it is measured against: ClickHouse alone inserting 100k of the same records
  once into a bare table in Native (no parsing, no schema work), and into the `calls` schema in
  Native and in JSONEachRow (`tests.bench.insert_costs`; `python -m tests.bench.insert_costs` costs
  each feature of the schema).

Options: --records N, --partitions P, --profile FILE (py-spy flame graph of the worker, if py-spy
is installed), --keep (leave the stack's data directory).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import psutil

from ingest.decode import Decoder
from ingest.worker import consumer_options
from ingest.writer import contract_columns, insert_settings
from schemas import cluster
from services.runtime import clients
from services.runtime.settings import Settings
from tests.bench import insert_costs
from tests.bench.harness import in_own_stack
from tests.ingest.support import produce, record_values
from tests.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--profile", help="py-spy profile of the worker: FILE.svg (flame graph) or FILE.txt")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--log-level", default="info", help="the worker's log level (debug: one line per batch)")
    args = parser.parse_args(argv)
    return in_own_stack("ingest", lambda stack: run(stack, args), keep=args.keep)


async def run(stack: Stack, args: argparse.Namespace) -> int:
    stamp = int(time.time())
    topic, company = f"bench-ingest-{stamp}", f"bench-{stamp}"
    settings = replace(stack.with_topic(topic), kafka_partitions=args.partitions, batch_max_age_s=1.0,
                       log_level=args.log_level)
    print(f"generating {args.records:,} records ...", flush=True)
    values = record_values(args.records, company, seed=stamp)
    size = sum(map(len, values))
    print(f"  {size / len(values):.0f} bytes/record on average, {size / 1e6:.0f} MB in all")
    print(f"decoder alone (size, JSON, contract):    {decode_cost(values[:50_000]):>10.1f} µs/record")
    started = time.perf_counter()
    await produce(settings, values, compression="lz4")
    print(f"produced with lz4 in {time.perf_counter() - started:.1f}s")
    del values

    drain, drain_cpu = await raw_drain(settings, args.records)
    print(f"(b) raw drain (aiokafka, no work):      {drain:>10,.0f} records/s")
    pipeline, steady, cpu = await end_to_end(stack, settings, company, args.records, args.profile)
    print(f"(a) pipeline end to end (trilha ingest): {pipeline:>10,.0f} records/s"
          f"  ({steady:,.0f}/s from the first row visible to the last)")
    print(f"(c) ratio a/b:                           {pipeline / drain:>10.2f}  (target >= 0.5)")
    print("CPU per record, steady part of (a): " + ", ".join(f"{name} {us:.1f} µs" for name, us in cpu.items())
          + f"; the drain: {drain_cpu:.1f} µs")
    if "worker" in cpu:
        print(f"worker's ratio (drain CPU / worker CPU per record): {drain_cpu / cpu['worker']:.2f}"
              "  (a/b with ClickHouse on cores of its own)")
    alone = await clickhouse_alone(settings, record_values(args.records, f"{company}-direct", seed=stamp + 1))
    print(f"ClickHouse alone (raw_insert, no Kafka): {alone:>10,.0f} records/s  = {alone / drain:.2f} of (b),"
          " the ceiling of (c) here")
    await cpu_bill(settings, cpu, record_values(100_000, f"{company}-floor", seed=stamp + 2))
    return 0


async def cpu_bill(settings: Settings, cpu: dict[str, float], values: list[bytes]) -> None:
    """What the pipeline costs in CPU per record, against what ClickHouse alone needs at the least."""
    paid = sum(us for name, us in cpu.items() if name in ("broker", "worker") or name.startswith("clickhouse"))
    print(f"whole pipeline (broker + worker + ClickHouse, process CPU): {paid:.1f} µs/record"
          f" = {1e6 / paid:,.0f} records per CPU-second")
    client = await clients.clickhouse(settings)
    try:
        floor = await insert_costs.floor(client, values)
    finally:
        await client.close()
    print(f"floor, ClickHouse alone on one server ({len(values):,} of the same records in one insert, its own"
          " CPU accounting):")
    for name, us in floor.items():
        print(f"  {name:<26} {us:6.2f} µs/record = {1e6 / us:>9,.0f} records per CPU-second")


def decode_cost(values: list[bytes], rounds: int = 5) -> float:
    """µs per record of the worker's decoder, best of `rounds` passes (the least disturbed one)."""
    decode, best = Decoder(1 << 20).decode, float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for value in values:
            decode(value)
        best = min(best, time.perf_counter() - started)
    return best / len(values) * 1e6


async def clickhouse_alone(settings: Settings, values: list[bytes], rows: int = 100_000) -> float:
    client = await clients.clickhouse(settings)
    try:
        started = time.perf_counter()
        for n, start in enumerate(range(0, len(values), rows)):
            body = b"\n".join(values[start:start + rows])
            options = {**insert_settings(rows), "insert_deduplication_token": f"bench-direct-{n}-{started}"}
            await client.raw_insert("calls", contract_columns(), body, settings=options, fmt="JSONEachRow")
        return len(values) / (time.perf_counter() - started)
    finally:
        await client.close()


async def raw_drain(settings: Settings, expected: int) -> tuple[float, float]:
    """Records/s, and CPU µs per record of this process (the drain) and the broker's, if it is ours."""
    me = psutil.Process()
    consumer = clients.kafka_consumer(settings, settings.kafka_topic, group_id=None, **consumer_options(settings))
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=0)  # metadata and positions: "ready to fetch"
        seen, started, cpu = 0, time.perf_counter(), _cpu(me)
        while seen < expected:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(messages)
        return seen / (time.perf_counter() - started), (_cpu(me) - cpu) / seen * 1e6
    finally:
        await consumer.stop()


async def end_to_end(stack: Stack, settings: Settings, company: str, expected: int,
                     profile: str | None) -> tuple[float, float, dict[str, float]]:
    """Records/s from assignment to the last row, records/s and CPU µs per record in the steady part."""
    ours = [name for name in stack.procs if name == "broker" or name.startswith("clickhouse")]  # none: containers
    processes = {name: psutil.Process(stack.procs[name].pid) for name in ours}
    worker = stack.spawn("bench-worker", "ingest", settings=settings)
    processes["worker"] = psutil.Process(worker.pid)
    spy = _profile(worker.pid, profile) if profile else None
    try:
        first, last = await _wait_rows(settings, company, expected, processes)
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        stack.stop("bench-worker")
    assigned = _log_time(stack.log("bench-worker"), "partitions assigned")
    rows = max(1, last.rows - first.rows)
    cpu = {name: (last.cpu[name] - first.cpu[name]) / rows * 1e6 for name in processes}
    cpu["ClickHouse's own accounting"] = (last.engine_us - first.engine_us) / rows
    return expected / (last.at - assigned), rows / max(1e-9, last.at - first.at), cpu


@dataclass(frozen=True)
class _Seen:
    at: float  # epoch seconds
    rows: int
    cpu: dict[str, float]  # CPU seconds of each process so far
    engine_us: int  # ClickHouse's own CPU accounting so far, µs, every shard


async def _wait_rows(settings: Settings, company: str, expected: int, processes: dict[str, psutil.Process]
                     ) -> tuple[_Seen, _Seen]:
    """What was seen when the first rows of `company` became visible, and when all of them were."""
    client = await clients.clickhouse(settings)
    try:
        deadline, first = time.monotonic() + 600, None
        while time.monotonic() < deadline:
            count = (await client.query("SELECT count() FROM calls WHERE company_id = {c:String}",
                                        parameters={"c": company})).result_rows[0][0]
            if count and (first is None or count >= expected):
                seen = _Seen(time.time(), count, {name: _cpu(p) for name, p in processes.items()},
                             await engine_cpu_us(settings))
                first = first or seen
                if count >= expected:
                    return first, seen
            await asyncio.sleep(0.1)
        raise SystemExit(f"only {count:,} of {expected:,} rows after 600 s")
    finally:
        await client.close()


async def engine_cpu_us(settings: Settings) -> int:
    """ClickHouse's CPU so far by its own accounting, summed over the shards (each counts its own)."""
    total = 0
    for target in cluster.ddl_targets(settings):
        client = await clients.clickhouse(target)
        try:
            total += int((await client.query(insert_costs.CPU_SQL)).result_rows[0][0])
        finally:
            await client.close()
    return total


def _log_time(log: str, event: str) -> float:
    for line in log.splitlines():
        if event in line:
            return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()
    raise SystemExit(f"the worker never logged {event!r}:\n{log[-2000:]}")


def _cpu(process: psutil.Process) -> float:
    """CPU seconds of the process and its children (the broker command runs Tansu as a child)."""
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _profile(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy): no profile")
        return None
    fmt = "raw" if out.endswith(".txt") else "flamegraph"  # raw: collapsed stacks, greppable
    return subprocess.Popen([spy, "record", "-p", str(pid), "-o", out, "--rate", "200", "--nonblocking",
                             "--format", fmt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
