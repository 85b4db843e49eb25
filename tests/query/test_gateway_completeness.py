"""Completeness per gateway: whatever numbers are stored (duplicates, whole blocks, blocks missing
altogether, another company using the same gateway id), the watermark and the gaps are exactly what
a set computation over the stored numbers says; and through the real broker and `trilha ingest`,
withheld records show as a gap in the API that closes when they arrive."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import yaml
from clickhouse_connect.driver.asyncclient import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.access.tenant import TenantScope
from query.gateways import http
from query.gateways.gaps import Blocks, assemble, merged
from query.gateways.store import GAPS, SUMMARY, completeness
from query.openapi_doc import served
from schemas import call_record_schema
from services.stack.records import RecordFactory
from tests.ingest.support import produce
from tests.query.support import bearer, create_token, query_service, unique_company
from tests.stack import Stack

N = 65536  # trilha_gateway_block_size() in migration 0060


def expected(stored: set[int]) -> tuple[int, list[tuple[int, int]]]:
    """The simple answer: the longest run 1..w stored, and every missing range below the highest."""
    watermark = 0
    while watermark + 1 in stored:
        watermark += 1
    missing = sorted(set(range(1, max(stored) + 1)) - stored)
    return watermark, merged((m, m) for m in missing)


async def store_numbers(ch: AsyncClient, company: str, gateway: str, runs: list[tuple[int, int]],
                        numbers: list[int]) -> None:
    """Calls carrying these numbers, as ingest stores them (runs as first, count)."""
    select = ("SELECT {company:String}, now64(3), generateUUIDv4(), 1, {gateway:String}, toUInt64(n) "
              "FROM (SELECT {numbers:Array(UInt64)} AS a) ARRAY JOIN a AS n")
    into = "INSERT INTO calls (company_id, timestamp, query_id, duration_ms, gateway_id, gateway_seq) "
    params = {"company": company, "gateway": gateway}
    for first, count in runs:
        await ch.command(into + "SELECT {company:String}, now64(3), generateUUIDv4(), 1, {gateway:String}, "
                         "toUInt64(number) FROM numbers({first:UInt64}, {count:UInt64})",
                         parameters={**params, "first": first, "count": count})
    if numbers:
        await ch.command(into + select, parameters={**params, "numbers": numbers})


near_boundaries = st.builds(lambda block, offset: max(1, block * N + offset),
                            st.integers(0, 3), st.integers(-40, 40))
run = st.tuples(near_boundaries, st.sampled_from([1, 5, 60, N - 3, N, N + 7, 2 * N]))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(runs=st.lists(run, max_size=3), numbers=st.lists(near_boundaries, max_size=40),
       repeats=st.lists(near_boundaries, max_size=5), max_gaps=st.integers(1, 30))
async def test_watermark_and_gaps_are_the_set_computation(ch: AsyncClient, runs: list[tuple[int, int]],
                                                          numbers: list[int], repeats: list[int],
                                                          max_gaps: int) -> None:
    stored = {n for first, count in runs for n in range(first, first + count)} | set(numbers) | set(repeats)
    if not stored:
        return
    company, gateway = unique_company("seq"), f"gw-{uuid.uuid4().hex[:8]}"
    await store_numbers(ch, company, gateway, runs, numbers + repeats)
    await store_numbers(ch, company, gateway, [], repeats)  # the same numbers again: retries, a buggy gateway
    await store_numbers(ch, unique_company("other"), gateway, [(1, 3 * N)], [])  # another company, same id
    (found,) = await completeness(ch, TenantScope(company), max_gaps)
    watermark, gaps = expected(stored)
    assert (found.watermark, found.highest, found.stored) == (watermark, max(stored), len(stored))
    assert found.gaps == gaps[:max_gaps] and found.gaps_truncated == (len(gaps) > max_gaps)
    # asked by name (on shards, a read naming the gateway must still reach every shard)
    assert await completeness(ch, TenantScope(company), max_gaps, gateway) == [found]


@settings(max_examples=500)
@given(st.sets(st.integers(1, 300), min_size=1), st.integers(1, 20))
def test_assembling_block_facts_is_the_set_computation(stored: set[int], max_gaps: int) -> None:
    """The same property at a block size of 16, on the pure part, over many more cases."""
    size, highest = 16, max(stored)
    blocks = {b: {n for n in stored if (n - 1) // size == b} for b in range((highest - 1) // size + 1)}
    facts = Blocks(size, highest, len(stored),
                   [b for b, have in blocks.items() if have and len(have) < min(size, highest - b * size)],
                   [b for b, have in blocks.items() if have])
    found = {}
    for b in facts.to_read(max_gaps):
        low, high = facts.bounds(b)
        ranges = merged((n, n) for n in range(low, high + 1) if n not in blocks[b])
        found[b] = (ranges[:max_gaps], len(ranges) > max_gaps)
    answer = assemble("gw", facts, found, max_gaps, "")
    watermark, gaps = expected(stored)
    assert answer.watermark == watermark and answer.gaps == gaps[:max_gaps]
    assert answer.gaps_truncated == (len(gaps) > max_gaps)


def numbered(factory: RecordFactory, company: str, gateway: str, seqs: list[int]) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(minutes=10)
    return [orjson.dumps({**factory.record(start + timedelta(seconds=n), company=company),
                          "gateway_id": gateway, "gateway_seq": n}) for n in seqs]


async def _until(service, token: dict[str, str], path: str, done, timeout: float = 90):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        answer = await service.get(path, token)
        if (answer.status == 200 and done(answer.body)) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.5)


async def test_withheld_records_show_as_a_gap_that_closes_when_they_arrive(stack: Stack) -> None:
    settings_ = stack.with_topic("gateway-seq-e2e")
    factory, company, gateway = RecordFactory(seed=31), unique_company("gwseq"), "edge-1.a1b2c3d4"
    withheld = [5, 6, 7, 12]
    sent = [n for n in range(1, 21) if n not in withheld]
    kept = numbered(factory, company, gateway, sent)
    plain = factory.records(3, company=company)  # records nobody numbered are accepted as ever
    await produce(settings_, kept + [orjson.dumps(r) for r in plain]
                  + numbered(factory, company, gateway, [3, 3]))  # a re-sent record counts once
    stack.spawn("ingest-gateway-seq", "ingest", settings=settings_)
    token = bearer(create_token(stack, company))
    path = f"/gateways/{gateway}/completeness"
    try:
        async with query_service(stack, "query-gateway-seq") as service:
            seen = await _until(service, token, path, lambda body: body["stored"] == 16)
            assert seen.body == {"gateway_id": gateway, "watermark": 4, "highest": 20, "stored": 16, "missing": 4,
                                 "gaps": [{"from": 5, "to": 7}, {"from": 12, "to": 12}], "gaps_truncated": False,
                                 "last_call": seen.body["last_call"]}
            await produce(settings_, numbered(factory, company, gateway, withheld))
            closed = await _until(service, token, path, lambda body: body["watermark"] == 20)
            assert closed.body["gaps"] == [] and closed.body["missing"] == 0 and closed.body["stored"] == 20
            listing = await service.get("/gateways/completeness?max_gaps=5", token)
            assert [g["gateway_id"] for g in listing.body["gateways"]] == [gateway]
            other = await service.get(path, bearer(create_token(stack, unique_company("none"))))
            assert other.status == 404  # another company's token sees nothing of this gateway
            bad = await service.get("/gateways/no%20such/completeness", token)
            assert bad.status == 400 and bad.body["error"]["parameter"] == "gateway_id"
            assert (await service.get(path + "?max_gaps=0", token)).status == 400
            found = await service.post("/events", {"QueryId": plain[0]["query_id"]}, headers=token)
            assert (found.body["Result"][0]["gateway_id"], found.body["Result"][0]["gateway_seq"]) == (None, None)
            found = await service.post("/events", {"QueryId": orjson.loads(kept[0])["query_id"]}, headers=token)
            assert (found.body["Result"][0]["gateway_id"], found.body["Result"][0]["gateway_seq"]) == (gateway, 1)
    finally:
        stack.stop("ingest-gateway-seq")


@pytest.mark.parametrize("max_gaps", [1, 3])
async def test_a_gap_spanning_whole_blocks_is_one_range(ch: AsyncClient, max_gaps: int) -> None:
    company, gateway = unique_company("span"), "gw-span"
    await store_numbers(ch, company, gateway, [(1, 10), (3 * N + 5, 10)], [2 * N + 1])
    (found,) = await completeness(ch, TenantScope(company), max_gaps)
    assert found.watermark == 10 and found.highest == 3 * N + 14
    assert found.gaps[:2] == [(11, 2 * N), (2 * N + 2, 3 * N + 4)][:max_gaps]


def test_the_documented_caps_are_the_service_caps() -> None:
    doc = yaml.safe_load(served())
    max_gaps = doc["components"]["parameters"]["MaxGaps"]["schema"]
    assert (max_gaps["minimum"], max_gaps["maximum"], max_gaps["default"]) == (1, http.MAX_GAPS, http.DEFAULT_GAPS)
    (path_id,) = [p for p in doc["paths"]["/gateways/{gateway_id}/completeness"]["get"]["parameters"]
                  if p.get("name") == "gateway_id"]
    contract = call_record_schema()["properties"]["gateway_id"]
    keys = ("pattern", "maxLength")
    assert {k: path_id["schema"][k] for k in keys} == {k: contract[k] for k in keys}


def test_every_statement_passes_the_tenant_guard() -> None:
    for sql in (SUMMARY, GAPS):
        TenantScope("company-a").statement(sql)
