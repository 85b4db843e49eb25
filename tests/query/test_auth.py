"""API tokens, as a user meets them: `trilha tokens` on the command line, 401s over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from query.access.auth import CACHE_SECONDS
from services.stack.records import RecordFactory
from tests.query.support import (
    QueryService,
    bearer,
    cli,
    create_token,
    query_service,
    raw_insert,
    unique_company,
)
from tests.stack import Stack


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-auth") as running:
        yield running


async def test_health_and_metrics_need_no_token(service: QueryService) -> None:
    health = await service.get("/healthz")
    assert health.status == 200 and health.body == {"status": "ok", "clickhouse": "ok"}
    scraped = await service.get("/metrics")
    assert scraped.status == 200 and "trilha_query_requests_total" in scraped.body


@pytest.mark.parametrize("headers, says", [
    ({}, "missing API token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
    ({"Authorization": "Bearer "}, "Bearer"),
    ({"Authorization": "Bearer not-a-token"}, "malformed"),
    ({"AccessToken": "trl_0123456789abcdef_" + "A" * 43}, "not valid"),
])
async def test_missing_or_bad_tokens_are_401_in_the_platform_shape(service: QueryService, headers: dict[str, str],
                                                                   says: str) -> None:
    answer = await service.post("/events", {"QueryId": "x"}, headers=headers)
    assert answer.status == 401
    assert says in answer.body["Status"]["message"]
    assert answer.body["Result"] == [] and answer.body["Cursor"] is None
    assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer")


async def test_a_wrong_secret_for_a_real_token_id_is_401(stack: Stack, service: QueryService) -> None:
    token = create_token(stack, unique_company())
    token_id = token.split("_")[1]
    forged = f"trl_{token_id}_" + ("B" * 43 if not token.endswith("B" * 43) else "C" * 43)
    answer = await service.post("/events", {"QueryId": "x"}, headers=bearer(forged))
    assert answer.status == 401 and answer.body["Status"]["message"] == "the API token is not valid"


async def test_bearer_and_access_token_headers_both_work(stack: Stack, service: QueryService) -> None:
    token = create_token(stack, unique_company())
    for headers in (bearer(token), {"AccessToken": token, "TokenId": "ignored-by-trilha"}):
        answer = await service.post("/events", {"QueryId": "nope"}, headers=headers)
        assert answer.status == 404, answer.body


async def test_create_list_and_revoke_from_the_command_line(stack: Stack, ch, service: QueryService) -> None:  # noqa: ANN001
    company = unique_company()
    record = RecordFactory(seed=3).record(company=company)
    await raw_insert(ch, [record])
    token = create_token(stack, company, user="maria", name="ERP integration")
    token_id = token.split("_")[1]

    listed = cli(stack, "tokens", "list", "--company", company)
    assert listed.returncode == 0
    line = next(row for row in listed.stdout.splitlines() if row.startswith(token_id))
    assert company in line and "maria" in line and "active" in line and "ERP integration" in line
    assert token.split("_", 2)[2] not in listed.stdout

    found = await service.post("/events", {"QueryId": record["query_id"]}, headers=bearer(token))
    assert found.status == 200 and found.body["Result"][0]["query_id"] == record["query_id"]

    revoked = cli(stack, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()
    while (await service.post("/events", {"QueryId": record["query_id"]}, headers=bearer(token))).status != 401:
        assert time.monotonic() - started < CACHE_SECONDS + 2, "revocation did not take effect in time"
        await asyncio.sleep(0.25)
    assert "revoked" in cli(stack, "tokens", "list", "--company", company).stdout


def test_revoking_an_unknown_token_says_so(stack: Stack) -> None:
    done = cli(stack, "tokens", "revoke", "0000000000000000")
    assert done.returncode == 1 and "no token with id" in done.stderr


def test_create_needs_a_company(stack: Stack) -> None:
    done = cli(stack, "tokens", "create")
    assert done.returncode == 2 and "--company" in done.stderr


async def test_no_token_reaches_the_service_log(stack: Stack, service: QueryService) -> None:
    token = create_token(stack, unique_company())
    await service.post("/events", {"QueryId": "x"}, headers=bearer(token))
    await service.post("/events", {"QueryId": "x"}, headers=bearer(token[:-1] + "Z"))
    await service.post("/events", {"QueryId": "x"}, headers={"AccessToken": "trl_garbage"})
    log = service.log()
    assert token.split("_", 2)[2] not in log and "trl_garbage" not in log and token[:-1] not in log
