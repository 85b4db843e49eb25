"""`trilha audit` against tampering behind the service's back: one field changed (ALTER UPDATE and
insert-replace), one row deleted, one forged row inserted, a checkpoint rewritten in place. Each is
reported naming what it hit, and the record's proof no longer verifies (independent verifier).
An LGPD erasure shows as an erasure, not as tampering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.proofs import ledger, merkle
from services.stack.records import RecordFactory
from tests.proofs import independent
from tests.proofs.support import checkpoint, merge_calls, tamper
from tests.query.support import (
    INSERT_SETTINGS,
    QueryService,
    bearer,
    cli,
    create_token,
    query_service,
    raw_insert,
    unique_company,
)
from tests.stack import Stack

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-audit") as running:
        yield running


async def _company(stack: Stack, ch, count: int = 4) -> dict[str, Any]:  # noqa: ANN001
    """A company of its own with `count` checkpointed records, and a clean audit."""
    company = unique_company("audit")
    records = [RecordFactory(seed=n).record(NOW - timedelta(seconds=n), company=company) for n in range(count)]
    await raw_insert(ch, records)
    await checkpoint(stack, ch)
    assert _audit(stack, company).returncode == 0
    return {"company": company, "records": records, "token": bearer(create_token(stack, company))}


def _audit(stack: Stack, company: str) -> Any:
    return cli(stack, "audit", "--company", company)


async def _proof_ok(service: QueryService, world: dict[str, Any], query_id: str) -> bool:
    answer = await service.post("/events", {"QueryId": query_id, "Proof": True}, headers=world["token"])
    if answer.status != 200:
        return False
    keys = (await service.get("/.well-known/trilha-checkpoint-keys")).body
    return independent.answer_ok(answer.body, keys) == [True]


async def test_a_field_changed_by_alter_update_is_reported(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    victim, bystander = world["records"][1]["query_id"], world["records"][2]["query_id"]
    assert await _proof_ok(service, world, victim)
    await tamper(stack, "ALTER TABLE calls UPDATE status = 200 + (status % 7) + 1 WHERE company_id = {c:String} "
                        "AND query_id = {q:String}", c=world["company"], q=victim)
    done = _audit(stack, world["company"])
    assert done.returncode == 1 and f"changed {world['company']} {victim}" in done.stdout, done.stdout
    assert bystander not in done.stdout
    assert not await _proof_ok(service, world, victim)
    assert await _proof_ok(service, world, bystander)


async def test_a_field_changed_by_insert_replace_is_reported(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    record = world["records"][0]
    forged = {**record, "client_name": record.get("client_name", "") + " (forjado)"}
    await raw_insert(ch, [forged])
    done = _audit(stack, world["company"])
    assert done.returncode == 1 and f"changed {world['company']} {record['query_id']}" in done.stdout, done.stdout
    await checkpoint(stack, ch)  # the replacement is the same record: it gets no second leaf
    assert f"added {world['company']}" not in _audit(stack, world["company"]).stdout
    month = datetime.fromisoformat(record["timestamp"]).astimezone(UTC)
    await merge_calls(stack, month.year * 100 + month.month)  # the replacement wins, as it would in time
    answer = await service.post("/events", {"QueryId": record["query_id"], "Proof": True}, headers=world["token"])
    assert answer.body["Result"][0]["client_name"] == forged["client_name"]
    keys = (await service.get("/.well-known/trilha-checkpoint-keys")).body
    assert independent.answer_ok(answer.body, keys) == [False]


async def test_a_deleted_row_is_reported(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    victim = world["records"][2]["query_id"]
    await tamper(stack, "ALTER TABLE calls DELETE WHERE company_id = {c:String} AND query_id = {q:String}",
                 c=world["company"], q=victim)
    done = _audit(stack, world["company"])
    assert done.returncode == 1 and f"removed {world['company']} {victim}" in done.stdout, done.stdout
    assert not await _proof_ok(service, world, victim)


async def test_a_forged_row_is_reported(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    forged = RecordFactory(seed=99).record(NOW - timedelta(days=3), company=world["company"])
    backdated = {**forged, "ingested_at": (NOW - timedelta(days=3)).isoformat()}  # as if stored long ago
    await ch.raw_insert("calls", None, orjson.dumps(backdated), fmt="JSONEachRow", settings=INSERT_SETTINGS)
    done = _audit(stack, world["company"])
    assert done.returncode == 1 and f"added {world['company']} {forged['query_id']}" in done.stdout, done.stdout
    await checkpoint(stack, ch)  # it is older than the re-read overlap: never made a leaf
    assert not await _proof_ok(service, world, forged["query_id"])


async def test_a_checkpoint_rewritten_in_place_is_detected(stack: Stack, ch) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    head = await checkpoint(stack, ch) or (await _latest(ch))
    original = head["root"]
    forged_root = ("0" if original[0] != "0" else "1") + original[1:]
    await tamper(stack, "ALTER TABLE proof_checkpoints UPDATE root = {r:String} WHERE seq = {s:UInt64}",
                 r=forged_root, s=head["seq"])
    try:
        done = _audit(stack, world["company"])
        assert done.returncode == 1 and f"checkpoint {head['seq']}: signature does not verify" in done.stdout, \
            done.stdout
    finally:
        await tamper(stack, "ALTER TABLE proof_checkpoints UPDATE root = {r:String} WHERE seq = {s:UInt64}",
                     r=original, s=head["seq"])
    assert _audit(stack, world["company"]).returncode == 0


async def _latest(ch) -> dict[str, Any]:  # noqa: ANN001
    return await ledger.latest_checkpoint(ch)  # type: ignore[return-value]


async def test_an_lgpd_erasure_shows_as_an_erasure(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    world = await _company(stack, ch)
    victim, bystander = world["records"][3]["query_id"], world["records"][0]["query_id"]
    done = cli(stack, "erase", "--company", world["company"], "--query-id", victim, "--reason", "LGPD art. 18 #42")
    assert done.returncode == 0, done.stdout + done.stderr
    done = _audit(stack, world["company"])
    assert done.returncode == 0 and f"erased {world['company']} {victim}" in done.stdout, done.stdout
    assert "LGPD art. 18 #42" in done.stdout
    answer = await service.post("/events", {"QueryId": victim}, headers=world["token"])
    assert answer.status == 404
    assert await _proof_ok(service, world, bystander)



async def test_a_deleted_tree_node_is_reported_and_proofs_through_it_say_so(stack: Stack, ch,  # noqa: ANN001
                                                                          service: QueryService) -> None:
    world = await _company(stack, ch, count=2)
    await _company(stack, ch, count=2)  # leaves after ours: our path has a node to lose
    query_id = world["records"][0]["query_id"]
    answer = await service.post("/events", {"QueryId": query_id, "Proof": True}, headers=world["token"])
    proof = answer.body["Proofs"][0]
    a, b = merkle.inclusion_ranges(proof["leaf_index"], proof["tree_size"])[0]
    level, index = merkle.pieces(a, b)[0]
    original = await ch.query("SELECT hash, attempt FROM proof_nodes WHERE level = {l:UInt8} AND idx = {i:UInt64}",
                              parameters={"l": level, "i": index})
    await tamper(stack, "ALTER TABLE proof_nodes DELETE WHERE level = {l:UInt8} AND idx = {i:UInt64}",
                 l=level, i=index)
    try:
        done = _audit(stack, world["company"])
        assert done.returncode == 1 and f"tree node (level {level}, index {index}): missing" in done.stdout, \
            done.stdout
        answer = await service.post("/events", {"QueryId": query_id, "Proof": True}, headers=world["token"])
        assert answer.status == 200 and answer.body["Proofs"][0]["status"] == "unavailable", answer.body
    finally:
        hash_, attempt = original.result_rows[0]
        await ch.command("INSERT INTO proof_nodes (level, idx, hash, attempt) VALUES ({l:UInt8}, {i:UInt64}, "
                         "{h:String}, {a:UInt64})", parameters={"l": level, "i": index, "h": hash_, "a": attempt})
    assert _audit(stack, world["company"]).returncode == 0
