"""`trilha loadgen`: a steady rate of valid, realistic records, and a clean stop that loses none."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import orjson

from schemas.contract import call_record_validator
from services.runtime import clients
from services.runtime.settings import Settings
from tests.stack import Stack


def _check_digits_ok(number: str) -> bool:
    """CPF (11 digits) and CNPJ (14 digits) check digits, computed independently of the generator."""
    digits = [int(c) for c in number]
    for position in (len(digits) - 2, len(digits) - 1):
        if len(digits) == 11:
            total = sum(d * w for d, w in zip(digits, range(position + 1, 1, -1), strict=False))
            expected = total * 10 % 11 % 10
        else:
            weights = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2][13 - position:]
            rest = sum(d * w for d, w in zip(digits, weights, strict=False)) % 11
            expected = 0 if rest < 2 else 11 - rest
        if digits[position] != expected:
            return False
    return True


def _finished(log: str) -> dict[str, int]:
    line = next(line for line in log.splitlines() if "loadgen finished" in line)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", line)}


async def test_loadgen_publishes_valid_records_at_the_rate_asked(stack: Stack) -> None:
    settings = stack.with_topic("gw-loadgen")
    proc = stack.spawn("loadgen-gw", "loadgen", "--rate", "200", "--duration", "3", "--companies", "2",
                       settings=settings)
    assert await asyncio.to_thread(proc.wait, 60) == 0, stack.log("loadgen-gw")
    summary = _finished(stack.log("loadgen-gw"))
    assert 570 <= summary["made"] <= 600 and summary["sent"] == summary["made"]
    assert (summary["invalid"], summary["dropped"], summary["rejected"]) == (0, 0, 0)
    assert re.search(r"rate +\d+/s \(target 200\)  sent +\d+", stack.log("loadgen-gw"))  # the progress line

    records = await _read_all(settings, summary["made"])
    validate = call_record_validator()
    assert all(validate(r) is None for r in records)
    assert {r["company_id"] for r in records} == {"company-1", "company-2"}
    assert len({r["resource"] for r in records}) >= 4 and len({r["status"] for r in records}) >= 3
    documents = [re.match(r"doc\{(\d+)\}", r["q"]).group(1) for r in records]  # type: ignore[union-attr]
    assert all(len(d) in (11, 14) for d in documents) and any(len(d) == 14 for d in documents)
    assert all(_check_digits_ok(d) for d in documents)
    assert not _check_digits_ok("12345678900")


async def test_loadgen_runs_until_stopped_and_delivers_everything_it_made(stack: Stack) -> None:
    settings = stack.with_topic("gw-loadgen-forever")
    proc = stack.spawn("loadgen-gw-forever", "loadgen", "--rate", "300", "--duration", "0", "--quiet",
                       settings=settings)
    await asyncio.sleep(0.5)
    deadline = time.monotonic() + 60
    while "loadgen started" not in stack.log("loadgen-gw-forever") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    assert proc.poll() is None  # duration 0: still running
    assert stack.stop("loadgen-gw-forever", signal.SIGTERM) == 0, stack.log("loadgen-gw-forever")
    summary = _finished(stack.log("loadgen-gw-forever"))
    assert summary["made"] > 300 and summary["sent"] == summary["made"]
    assert not re.search(r"rate +\d+/s \(target", stack.log("loadgen-gw-forever"))  # --quiet: no live line
    assert len(await _read_all(settings, summary["made"])) >= summary["made"]


async def _read_all(settings: Settings, count: int) -> list[dict]:
    """`count` distinct records from the topic (ids are not known in advance: count them)."""
    consumer = clients.kafka_consumer(settings, settings.kafka_topic, group_id=None)
    await consumer.start()
    seen: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 60
        while len(seen) < count and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    record = orjson.loads(message.value)
                    seen[record["query_id"]] = record
    finally:
        await consumer.stop()
    assert len(seen) == count, f"{len(seen)} of {count} records on {settings.kafka_topic}"
    return list(seen.values())
