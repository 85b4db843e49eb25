"""What ingest survives, checkpoints survive: a record stored twice (a batch re-read or retried
after its de-duplication window) keeps its one leaf; a round cut short before it signs leaves rows
no reader takes, every checkpoint verifiable, and the next round covers the same records; the
`trilha checkpoint` process signs a last checkpoint when stopped."""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from query.access.tenant import TenantScope
from query.events.store import record_by_query_id
from services.proofs import checkpointer, ledger, merkle, prover
from services.stack.records import RecordFactory
from tests.proofs import independent
from tests.proofs.support import checkpoint, round_settings
from tests.query.support import cli, raw_insert, unique_company
from tests.stack import Stack, wait_until

NOW = datetime.now(UTC).replace(microsecond=0)


async def _keys(stack: Stack) -> dict[str, Any]:
    done = cli(stack, "keys", "--json")
    return orjson.loads(done.stdout)


async def _verified(stack: Stack, ch, records: list[dict[str, Any]]) -> list[bool]:  # noqa: ANN001
    """Each record as the Events API serves it, with its proof, through the independent verifier."""
    served = [await record_by_query_id(ch, TenantScope(r["company_id"]), r["query_id"], None) for r in records]
    answer = {"Result": served, **await prover.inclusion(ch, served)}  # type: ignore[arg-type]
    return independent.answer_ok(answer, await _keys(stack))


async def test_a_record_stored_twice_keeps_one_leaf(stack: Stack, ch) -> None:  # noqa: ANN001
    company = unique_company("twice")
    records = [RecordFactory(seed=n).record(NOW, company=company) for n in range(3)]
    await raw_insert(ch, records)
    await checkpoint(stack, ch)
    await raw_insert(ch, records[:2])  # the same batch again, stored later
    await checkpoint(stack, ch)
    leaves = [leaf for leaf in await ledger.all_leaves(ch) if leaf["company_id"] == company]
    assert sorted(leaf["query_id"] for leaf in leaves) == sorted(r["query_id"] for r in records)
    assert await _verified(stack, ch, records) == [True] * 3
    assert cli(stack, "audit", "--company", company).returncode == 0


async def test_a_round_cut_short_leaves_every_checkpoint_verifiable(stack: Stack, ch) -> None:  # noqa: ANN001
    company = unique_company("cut")
    await raw_insert(ch, [RecordFactory(seed=1).record(NOW, company=company)])
    before = await checkpoint(stack, ch) or await ledger.latest_checkpoint(ch)
    records = [RecordFactory(seed=n).record(NOW - timedelta(seconds=n), company=company) for n in range(2, 6)]
    await raw_insert(ch, records)
    time.sleep(0.01)
    # a round killed after writing its leaves and nodes, before it signed: the same first steps
    rows = await ledger.new_records(ch, 0, await ledger.server_now_ms(ch), None, 100_000)
    size = int(before["size"])
    stored = await ledger.nodes(ch, set(merkle.pieces(0, size)), before)
    frontier = merkle.Frontier(size, lambda level, index: stored[(level, index)])
    await checkpointer._append(ch, rows[:3], frontier, set(), attempt=time.time_ns())  # noqa: SLF001
    assert (await ledger.latest_checkpoint(ch))["seq"] == before["seq"]
    assert [p["status"] for p in (await prover.inclusion(ch, [_served(r) for r in records]))["Proofs"]] \
        == ["pending"] * 4
    after = await checkpoint(stack, ch)
    assert after is not None and after["seq"] == before["seq"] + 1
    assert await _verified(stack, ch, records) == [True] * 4
    done = cli(stack, "audit", "--company", company)
    assert done.returncode == 0, done.stdout


def _served(record: dict[str, Any]) -> dict[str, Any]:
    moment = datetime.fromisoformat(record["timestamp"]).astimezone(UTC)
    return {**record, "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")}


async def test_the_checkpoint_process_signs_at_shutdown(stack: Stack, ch) -> None:  # noqa: ANN001
    settings = round_settings(stack)
    proc = stack.spawn("checkpoint", "checkpoint", settings=replace(settings, checkpoint_interval_s=3600))
    wait_until(lambda: "checkpointing" in stack.log("checkpoint") or proc.poll() is not None, 60, what="first round")
    head = await ledger.latest_checkpoint(ch)
    company = unique_company("last")
    records = [RecordFactory(seed=3).record(NOW, company=company)]
    await raw_insert(ch, records)
    time.sleep(0.05)
    assert stack.stop("checkpoint", signal.SIGTERM) == 0, stack.log("checkpoint")
    last = await ledger.latest_checkpoint(ch)
    assert last["seq"] > (head["seq"] if head else 0), stack.log("checkpoint")
    assert await _verified(stack, ch, records) == [True]
