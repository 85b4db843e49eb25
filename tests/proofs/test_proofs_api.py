"""Proofs through the Events API: a record found by QueryId, by q and by Tags comes with an
inclusion proof that the independent verifier (tests/proofs/independent.py, written from the
README alone) accepts; the consistency endpoint proves each checkpoint extends the previous one;
`trilha verify` checks a saved answer offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.stack.records import RecordFactory
from tests.proofs import independent
from tests.proofs.support import checkpoint
from tests.query.support import QueryService, bearer, cli, create_token, query_service, raw_insert, unique_company
from tests.stack import Stack

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-proofs") as running:
        yield running


@pytest.fixture(scope="module")
async def world(stack: Stack, ch) -> dict[str, Any]:  # noqa: ANN001
    factory = RecordFactory(seed=1409)
    company = unique_company("proof")
    records = [factory.record(NOW - timedelta(minutes=n), company=company, q=f"doc{{5204940960{n % 3}}}",
                              tags={"lote": f"L{n % 2}"}) for n in range(12)]
    records[0]["result"] = {"valor": 10.5, "itens": [1, 2.25, 1e-7, 3e21], "nome": "Ação \u2028 \"x\"\n"}
    await raw_insert(ch, records)
    await checkpoint(stack, ch)
    token = bearer(create_token(stack, company))
    return {"company": company, "records": records, "token": token}


async def _keys(service: QueryService) -> dict[str, Any]:
    answer = await service.get("/.well-known/trilha-checkpoint-keys")
    assert answer.status == 200 and answer.body["keys"], answer.body
    return answer.body


@pytest.mark.parametrize("search", ["QueryId", "q", "Tags"])
async def test_a_found_record_carries_a_proof_that_verifies(service: QueryService, world: dict[str, Any],
                                                            search: str) -> None:
    record = world["records"][0]
    body = {"QueryId": {"QueryId": record["query_id"]}, "q": {"q": "doc{52049409600}"},
            "Tags": {"Tags": {"lote": "L0"}}}[search]
    answer = await service.post("/events", {**body, "Proof": True}, headers=world["token"])
    assert answer.status == 200, answer.body
    assert len(answer.body["Proofs"]) == len(answer.body["Result"]) >= 1
    assert all(p["status"] == "included" for p in answer.body["Proofs"]), answer.body["Proofs"]
    assert independent.answer_ok(answer.body, await _keys(service)) == [True] * len(answer.body["Result"])


async def test_without_proof_the_answer_is_unchanged(service: QueryService, world: dict[str, Any]) -> None:
    answer = await service.post("/events", {"QueryId": world["records"][1]["query_id"]}, headers=world["token"])
    assert set(answer.body) == {"Result", "Status", "Cursor"}


async def test_a_record_not_yet_checkpointed_says_so(stack: Stack, ch, service: QueryService,  # noqa: ANN001
                                                     world: dict[str, Any]) -> None:
    late = RecordFactory(seed=7).record(NOW, company=world["company"])
    await raw_insert(ch, [late])
    answer = await service.post("/events", {"QueryId": late["query_id"], "Proof": True}, headers=world["token"])
    assert answer.body["Proofs"][0]["status"] == "pending", answer.body
    await checkpoint(stack, ch)
    answer = await service.post("/events", {"QueryId": late["query_id"], "Proof": True}, headers=world["token"])
    assert independent.answer_ok(answer.body, await _keys(service)) == [True]


async def test_each_checkpoint_extends_the_previous(stack: Stack, ch, service: QueryService,  # noqa: ANN001
                                                    world: dict[str, Any]) -> None:
    await raw_insert(ch, [RecordFactory(seed=8).record(NOW, company=world["company"])])
    head = await checkpoint(stack, ch)
    assert head is not None
    listed = await service.get(f"/proofs/checkpoints?after={head['seq'] - 3}", headers=world["token"])
    assert [c["seq"] for c in listed.body["checkpoints"]][-1] == head["seq"]
    keys = await _keys(service)
    for first in listed.body["checkpoints"][:-1]:
        answer = await service.get(f"/proofs/consistency?from={first['seq']}&to={head['seq']}", headers=world["token"])
        assert answer.status == 200, answer.body
        f, s = answer.body["from"], answer.body["to"]
        assert independent.checkpoint_ok(f, keys) and independent.checkpoint_ok(s, keys)
        assert independent.consistency_ok(f["size"], s["size"], bytes.fromhex(f["root"]), bytes.fromhex(s["root"]),
                                          [bytes.fromhex(p) for p in answer.body["path"]])
    assert (await service.get("/proofs/consistency?from=2&to=1", headers=world["token"])).status == 400
    assert (await service.get("/proofs/checkpoints")).status == 401


async def test_trilha_verify_checks_a_saved_answer_offline(stack: Stack, service: QueryService,
                                                           world: dict[str, Any], tmp_path: Path) -> None:
    answer = await service.post("/events", {"Tags": {"lote": "L1"}, "Proof": True}, headers=world["token"])
    saved, keys = tmp_path / "answer.json", tmp_path / "keys.json"
    saved.write_bytes(orjson.dumps(answer.body))
    keys.write_bytes(orjson.dumps(await _keys(service)))
    done = cli(stack, "verify", str(saved), "--keys", str(keys))
    assert done.returncode == 0 and done.stdout.count("ok ") == len(answer.body["Result"]), done.stdout + done.stderr
    answer.body["Result"][0]["status"] += 1
    saved.write_bytes(orjson.dumps(answer.body))
    done = cli(stack, "verify", str(saved), "--keys", str(keys))
    assert done.returncode == 1 and f"FAILED {answer.body['Result'][0]['query_id']}" in done.stdout, done.stdout


def test_trilha_keys_prints_what_the_well_known_path_serves(stack: Stack) -> None:
    done = cli(stack, "keys", "--json")
    assert done.returncode == 0, done.stderr
    [key] = [k for k in orjson.loads(done.stdout)["keys"] if k["current"]]
    assert len(bytes.fromhex(key["public_key"])) == 32


async def test_trilha_verify_checks_a_saved_consistency_proof(stack: Stack, ch, service: QueryService,  # noqa: ANN001
                                                              world: dict[str, Any], tmp_path: Path) -> None:
    await raw_insert(ch, [RecordFactory(seed=9).record(NOW, company=world["company"])])
    head = await checkpoint(stack, ch)
    assert head is not None and head["seq"] > 1
    answer = await service.get(f"/proofs/consistency?from=1&to={head['seq']}", headers=world["token"])
    saved, keys = tmp_path / "consistency.json", tmp_path / "keys.json"
    saved.write_bytes(orjson.dumps(answer.body))
    keys.write_bytes(orjson.dumps(await _keys(service)))
    done = cli(stack, "verify", str(saved), "--keys", str(keys))
    assert done.returncode == 0 and f"checkpoint {head['seq']} extends checkpoint 1" in done.stdout, done.stdout
    if answer.body["path"]:
        answer.body["path"][0] = ("0" if answer.body["path"][0][0] != "0" else "1") + answer.body["path"][0][1:]
        saved.write_bytes(orjson.dumps(answer.body))
        assert cli(stack, "verify", str(saved), "--keys", str(keys)).returncode == 1
