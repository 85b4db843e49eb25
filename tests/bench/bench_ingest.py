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
  CPU) over the steady part and over the whole run (partition assignment to the last row, then
  the merges the run set off until none has run for 20 s: the figure to compare, as the steady
  part flatters large batches), the rows merges rewrote per record, and the floor it is measured
  against: ClickHouse alone inserting 100k of the same records once into a bare table in Native
  (no parsing, no schema work), and into the `calls` schema in Native and in JSONEachRow
  (`tests.bench.insert_costs`; `python -m tests.bench.insert_costs` costs each feature of the
  schema);
* the floor of this design: broker + drain + decoder + one insert, each measured in this run, with
  the JSON lines as sent, with a Native block built in Python from the decoded records
  (`tests.bench.native_build`, which checks ClickHouse stores the same rows from it), and with
  Native as if it cost the worker nothing.

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
from tests.bench import insert_costs, native_build
from tests.bench.harness import in_own_stack
from tests.ingest.support import produce, record_values
from tests.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
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
    decoder = decode_cost(values[:50_000])
    print(f"decoder alone (size, JSON, contract):    {decoder:>10.1f} µs/record")
    native = native_build.build_cost(values[:50_000])
    print(f"a Native block built from the decoded records (tests.bench.native_build): {native:.1f} µs/record")
    started = time.perf_counter()
    await produce(settings, values, compression="lz4")
    print(f"produced with lz4 in {time.perf_counter() - started:.1f}s")
    del values

    drain, drain_cpu = await raw_drain(settings, args.records)
    print(f"(b) raw drain (aiokafka, no work):      {drain:>10,.0f} records/s")
    pipeline, steady, cpu, whole = await end_to_end(stack, settings, company, args.records, args.profile)
    print(f"(a) pipeline end to end (trilha ingest): {pipeline:>10,.0f} records/s"
          f"  ({steady:,.0f}/s from the first row visible to the last)")
    print(f"(c) ratio a/b:                           {pipeline / drain:>10.2f}  (target >= 0.5)")
    print("CPU per record, steady part of (a): " + ", ".join(f"{name} {us:.1f} µs" for name, us in cpu.items())
          + f"; the drain: {drain_cpu:.1f} µs")
    print("CPU per record, whole run of (a) (assignment to the last row, then the merges it set off): "
          + ", ".join(f"{name} {us:.1f} µs" for name, us in whole.items()))
    if "worker" in cpu:
        print(f"worker's ratio (drain CPU / worker CPU per record): {drain_cpu / whole['worker']:.2f}"
              "  (a/b with ClickHouse on cores of its own)")
    alone = await clickhouse_alone(settings, record_values(args.records, f"{company}-direct", seed=stamp + 1))
    print(f"ClickHouse alone (raw_insert, no Kafka): {alone:>10,.0f} records/s  = {alone / drain:.2f} of (b),"
          " the ceiling of (c) here")
    floor = await cpu_bill(settings, cpu, whole, record_values(100_000, f"{company}-floor", seed=stamp + 2))
    design_floor(whole, drain_cpu, decoder, native, floor)
    return 0


async def cpu_bill(settings: Settings, steady: dict[str, float], whole: dict[str, float], values: list[bytes]
                   ) -> dict[str, float]:
    """What the pipeline costs in CPU per record, against what ClickHouse alone needs at the least.

    The whole run is the figure to compare: the steady part (first row visible to the last) leaves
    out the first batch's decoding and every merge that comes after, so it flatters large batches."""
    for label, us in (("steady part", processes_paid(steady)),
                      ("whole run", processes_paid(whole)),
                      ("whole run + the merges it set off", whole_run_paid(whole))):
        print(f"whole pipeline (broker + worker + ClickHouse, process CPU), {label}: {us:.1f} µs/record"
              f" = {1e6 / us:,.0f} records per CPU-second")
    client = await clients.clickhouse(settings)
    try:
        floor = await insert_costs.floor(client, values)
    finally:
        await client.close()
    print(f"floor, ClickHouse alone on one server ({len(values):,} of the same records in one insert, its own"
          " CPU accounting):")
    for name, us in floor.items():
        print(f"  {name:<26} {us:6.2f} µs/record = {1e6 / us:>9,.0f} records per CPU-second")
    return floor


def processes_paid(cpu: dict[str, float]) -> float:
    """µs per record of the pipeline's processes: broker, worker and every ClickHouse shard's
    process (`clickhouse`, `clickhouse-2`, ...; not the engine's own accounting, the same CPU again)."""
    return sum(us for name, us in cpu.items() if name in ("broker", "worker") or name.startswith("clickhouse"))


def whole_run_paid(whole: dict[str, float]) -> float:
    """µs per record of the whole run, with the merges it set off after its last row."""
    return processes_paid(whole) + whole["merges after the last row"]


def design_floor(whole: dict[str, float], drain_us: float, decoder_us: float, native_us: float,
                 floor: dict[str, float]) -> None:
    """The least this design can spend per record, each part measured in this run on its own: the
    broker, an aiokafka consumer doing nothing (the drain), the decoder (the contract checked by
    msgspec), ClickHouse parsing the lines into the `calls` schema in one insert, no merge at all;
    with Native instead, built by the worker in Python, and as if built for free (no Python can).
    The pipeline is compared with each."""
    paid = whole_run_paid(whole)
    fixed = whole.get("broker", 0.0) + drain_us + decoder_us
    for label, insert in (("JSONEachRow, as sent", floor["calls schema, JSONEachRow"]),
                          ("Native built in Python", native_us + floor["calls schema, Native"]),
                          ("Native built for free", floor["calls schema, Native"])):
        us = fixed + insert
        print(f"floor of this design, {label} (broker + drain + decoder + one insert, no merge): {us:.1f} µs/record"
              f" = {1e6 / us:,.0f} records per CPU-second; the pipeline spends {paid / us:.2f}x that")


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


async def end_to_end(stack: Stack, settings: Settings, company: str, expected: int, profile: str | None,
                     settle: bool = True) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Records/s from assignment to the last row and in the steady part; CPU µs per record of each
    process in the steady part (first row visible to the last), and over the whole run: from the
    worker's partition assignment to the last row visible, then (`settle`) the merges the run set
    off until ClickHouse is idle again (ClickHouse's own accounting, every shard)."""
    ours = [name for name in stack.procs if name == "broker" or name.startswith("clickhouse")]  # none: containers
    processes = {name: psutil.Process(stack.procs[name].pid) for name in ours}
    worker = stack.spawn("bench-worker", "ingest", settings=settings)
    processes["worker"] = psutil.Process(worker.pid)
    spy = _profile(worker.pid, profile) if profile else None
    try:
        at_assignment = await _at_assignment(stack, settings, processes)
        merged_before = await engine_event(settings, "MergedRows") if settle else 0
        first, last = await _wait_rows(settings, company, expected, processes)
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        stack.stop("bench-worker")
    assigned = _log_time(stack.log("bench-worker"), "partitions assigned")
    rows = max(1, last.rows - first.rows)
    steady = {name: (last.cpu[name] - first.cpu[name]) / rows * 1e6 for name in processes}
    steady["ClickHouse's own accounting"] = (last.engine_us - first.engine_us) / rows
    whole = {name: (last.cpu[name] - at_assignment.cpu[name]) / expected * 1e6 for name in processes}
    whole["ClickHouse's own accounting"] = (last.engine_us - at_assignment.engine_us) / expected
    whole["merges after the last row"] = 0.0
    if settle:
        whole["merges after the last row"] = (await _merges_settled(settings) - last.engine_us) / expected
        merged = (await engine_event(settings, "MergedRows") - merged_before) / expected
        print(f"merges: {merged:.2f} rows rewritten per record ingested (every table), {await _calls_parts(settings)}"
              " active parts of calls left once they settled (fewer, larger inserts: fewer merges now and at"
              " every later merge level)")
    return expected / (last.at - assigned), rows / max(1e-9, last.at - first.at), steady, whole


async def _at_assignment(stack: Stack, settings: Settings, processes: dict[str, psutil.Process]) -> _Seen:
    """What was spent when the worker logged its partition assignment: its start-up (interpreter,
    imports, joining the group) is not ingest's cost per record, and the fetching starts there."""
    deadline = time.monotonic() + 120
    while "partitions assigned" not in stack.log("bench-worker"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker was never assigned its partitions:\n{stack.log('bench-worker')[-2000:]}")
        await asyncio.sleep(0.005)
    return _Seen(time.time(), 0, {name: _cpu(p) for name, p in processes.items()}, await engine_cpu_us(settings))


async def _merges_settled(settings: Settings, quiet_s: float = 20.0, limit_s: float = 240.0) -> int:
    """ClickHouse's CPU so far once no merge has run for `quiet_s` (at most `limit_s`): merging the
    parts a run inserted is part of what it costs, whenever ClickHouse chooses to do it. Polled once
    a second over one connection per shard, so the waiting itself costs ClickHouse next to nothing
    (its idle background work over the wait, ~0.5% of a core, is counted with the merges)."""
    targets = [await clients.clickhouse(target) for target in cluster.ddl_targets(settings)]
    try:
        deadline, quiet_since = time.monotonic() + limit_s, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_s:
            for client in targets:
                if (await client.query("SELECT count() FROM system.merges")).result_rows[0][0]:
                    quiet_since = time.monotonic()
            await asyncio.sleep(1.0)
    finally:
        for client in targets:
            await client.close()
    return await engine_cpu_us(settings)


async def _calls_parts(settings: Settings) -> int:
    return await _summed_over_shards(settings, "SELECT count() FROM system.parts WHERE active"
                                     " AND table IN ('calls', 'calls_local') AND database = currentDatabase()")


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
    return await engine_event(settings, "OSCPUVirtualTimeMicroseconds")


async def engine_event(settings: Settings, event: str) -> int:
    """One of ClickHouse's `system.events` counters so far, summed over the shards."""
    return await _summed_over_shards(settings, "SELECT sum(value) FROM system.events WHERE event = {e:String}",
                                     {"e": event})


async def _summed_over_shards(settings: Settings, sql: str, parameters: dict[str, str] | None = None) -> int:
    """A one-number query run on every shard (each counts only its own), the answers added up."""
    total = 0
    for target in cluster.ddl_targets(settings):
        client = await clients.clickhouse(target)
        try:
            total += int((await client.query(sql, parameters=parameters)).result_rows[0][0])
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
