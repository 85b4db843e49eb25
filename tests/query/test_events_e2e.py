"""The whole path a user relies on: a gateway publishes call records to Kafka, `trilha ingest`
writes them, and the Events API finds each of them, by QueryId and by input parameter."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson

from services.stack.records import RecordFactory, cpf
from tests.ingest.support import produce
from tests.query.support import bearer, create_token, query_service, unique_company
from tests.stack import Stack


async def test_published_records_are_found_through_the_events_api(stack: Stack) -> None:
    settings = stack.with_topic("events-e2e")
    factory, company = RecordFactory(seed=23), unique_company("e2e")
    doc = cpf(factory.rng)
    start = datetime.now(UTC) - timedelta(minutes=5)
    records = [factory.record(start + timedelta(seconds=n), company=company, q=f"doc{{{doc}}}") for n in range(40)]
    records[0]["result"] = "ok"  # a result that is a JSON string comes back as that string
    await produce(settings, [orjson.dumps(r) for r in records])
    stack.spawn("ingest-events-e2e", "ingest", settings=settings)
    token = bearer(create_token(stack, company))
    try:
        async with query_service(stack, "query-e2e") as service:
            deadline = time.monotonic() + 90
            while True:
                found = await service.post("/events", {"q": f"doc{{{doc}}}", "PageSize": 100}, headers=token)
                if len(found.body["Result"]) == len(records) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert sorted(r["query_id"] for r in found.body["Result"]) == sorted(r["query_id"] for r in records)
            first = await service.post("/log", {"QueryId": records[0]["query_id"],
                                                "QueryDate": start.strftime("%d/%m/%Y"), "DateFormat": "dd/MM/yyyy"},
                                       headers=token)
            assert first.status == 200 and first.body["Result"][0]["result"] == "ok"
            assert first.body["Result"][0]["request"] == records[0]["request"]
    finally:
        stack.stop("ingest-events-e2e")
