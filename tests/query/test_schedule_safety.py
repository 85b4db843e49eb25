"""Scheduled reports as a hostile tenant would use them (issue 10): a webhook aimed at the stack's own
ClickHouse or any internal address is refused at creation and again at delivery (ClickHouse gets
nothing), failures tell the tenant their class only, deleting a schedule cancels its retries,
revoking its token stops it, a company's schedules are capped, and one company's blackholed
webhooks do not hold up another company's report. All against the real `trilha query` and
`trilha scheduler` processes and the stack's ClickHouse."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession, web
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tokens
from query.reports import egress, schedules
from query.reports.delivery import REFUSED
from query.reports.scheduler import DELETED, REVOKED
from services.runtime.settings import Settings
from tests.query import report_support as rs
from tests.query import support
from tests.query.test_schedules import LOCAL, Api, _created, _post, _runs, _scheduler, _slot, local
from tests.stack import Stack, free_port

NAME = "query-schedule-safety"


@pytest.fixture(scope="module")
async def api(stack: Stack, ch: AsyncClient) -> AsyncIterator[Api]:
    """A query service with the default policy: nothing internal allow-listed; 3 schedules a company."""
    async with rs.service(stack, NAME, report_schedules_max=3) as (session, base):
        yield Api(session, base, ch, stack)


def _daily(slot: datetime, url: str) -> dict[str, Any]:
    return {"recurrence": {"frequency": "daily", "time": slot.strftime("%H:%M"), "timezone": "America/Sao_Paulo"},
            "range": "previous_day", "destination": {"type": "webhook", "url": url}}


def _minting_url(stack: Stack, token_id: str, host: str | None = None) -> str:
    """The issue's attack: ClickHouse's HTTP port with an INSERT that mints a token for another company."""
    sql = ("INSERT INTO api_tokens (token_id, company_id, user_id, name, secret_hash, created_at, revoked_at, "
           f"version) VALUES ('{token_id}', 'victim-co', '', 'minted', 'x', now64(3), NULL, 1)")
    base = stack.settings.clickhouse_url.rstrip("/")
    if host is not None:
        base = base.replace("127.0.0.1", host)
    return f"{base}/?query={quote(sql)}"


async def _minted(ch: AsyncClient, token_id: str) -> int:
    result = await ch.query("SELECT count() FROM api_tokens WHERE token_id = {id:String}", parameters={"id": token_id})
    return int(result.result_rows[0][0])


# --- at creation ---------------------------------------------------------------------------------------------

INTERNAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "2130706433", "127.1", "[::ffff:127.0.0.1]",
                  "169.254.169.254", "10.0.0.7", "0x7f000001", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]"]


async def test_a_webhook_to_clickhouse_or_any_internal_address_is_a_400_at_creation(api: Api) -> None:
    headers = await rs.token(api.stack, rs.company("safety-create"))
    port = int(api.stack.settings.clickhouse_url.rsplit(":", 1)[1].strip("/"))
    urls = [_minting_url(api.stack, "minted00create00")]
    urls += [f"{scheme}://{host}:{port}/?query=SELECT+1" for host in INTERNAL_HOSTS for scheme in ("http", "https")]
    urls += ["https://user:pass@hooks.example.com/x", "http://hooks.example.com/x"]
    for url in urls:
        status, answer = await _post(api, headers, _daily(_slot(), url))  # type: ignore[arg-type]
        assert status == 400, (url, answer)
        assert answer["error"]["parameter"] == "destination.url", url
        assert answer["error"]["message"].startswith("destination.url"), answer  # and says what to fix
    assert await _minted(api.ch, "minted00create00") == 0


# --- at delivery ---------------------------------------------------------------------------------------------


async def _stored(ch: AsyncClient, company: str, token_id: str, url: str, slot: datetime) -> str:
    """A webhook schedule stored as it would have been before this check (or under an operator's older
    allow-list): straight into the table, past the API's check."""
    anything = egress.Policy(networks=(egress.ipaddress.ip_network("0.0.0.0/0"),
                                       egress.ipaddress.ip_network("::/0")), allow_http=True)
    spec = schedules.parse_spec(_daily(slot, url), anything)
    return (await schedules.create(ch, company, token_id, spec)).schedule_id


@pytest.fixture
async def spy() -> AsyncIterator[tuple[int, list[str]]]:
    """An internal service on 127.0.0.1 that records every request reaching it: (port, paths)."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    async with rs.listening(app) as port:
        yield port, hits


async def test_a_stored_internal_webhook_is_refused_at_delivery_and_clickhouse_gets_nothing(
        api: Api, spy: tuple[int, list[str]]) -> None:
    company = rs.company("safety-deliver")
    token_id, _ = await tokens.create(api.ch, company)
    slot, (spy_port, hits) = _slot(), spy
    minted = {"minted00literal0": "127.0.0.1", "minted00hostname": "localhost"}  # a name resolved at delivery
    sids = {tid: await _stored(api.ch, company, token_id, _minting_url(api.stack, tid, host), slot)
            for tid, host in minted.items()}
    spied = [await _stored(api.ch, company, token_id, f"http://{host}:{spy_port}/{host}", slot)
             for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]")]
    closed = await _stored(api.ch, company, token_id, f"http://127.0.0.1:{free_port()}/hook", slot)
    try:
        code, log = await _scheduler(api.stack, f"sched-safety-deliver-{company[-6:]}", api.stack.settings,
                                     slot + timedelta(seconds=30))
        assert code == 1, log
        assert hits == [], "no request reached the internal service"
        for sid in [*sids.values(), *spied, closed]:
            runs = await _runs(api.ch, sid)
            assert [(r[1], r[2:]) for r in runs] == [(1, ("started", "")), (1, ("abandoned", REFUSED))], runs
        assert [await _minted(api.ch, tid) for tid in minted] == [0, 0], "ClickHouse ran the SQL in the URL"
        assert "query=" not in log and "INSERT" not in log, "no query string in the operator's log"

        code, log = await _scheduler(api.stack, f"sched-safety-closed-{company[-6:]}", local(
            api.stack.settings, report_max_attempts=1), slot + timedelta(days=1, seconds=30))
        error = (await _runs(api.ch, closed))[-1][3]
        assert error == "could not connect to the receiver", "an allow-listed closed port: the class, not the port"
        assert sorted(hits) == ["/127.0.0.1", "/[::ffff:127.0.0.1]", "/localhost"], "allow-listed: delivered"
        for tid, sid in sids.items():  # 127.0.0.1 allow-listed now, but ClickHouse itself never is
            assert await _minted(api.ch, tid) == 0, f"ClickHouse ran the SQL in the URL ({minted[tid]}, allow-listed)"
            assert [r[2:] for r in (await _runs(api.ch, sid))[-2:]] == [("started", ""), ("abandoned", REFUSED)]
    finally:
        for sid in [*sids.values(), *spied, closed]:
            await schedules.delete(api.ch, company, sid)


# --- deleting and revoking -----------------------------------------------------------------------------------


@dataclass
class Failing:
    url: str
    calls: list[float]


@pytest.fixture
async def failing() -> AsyncIterator[Failing]:
    """A receiver on 127.0.0.1 that always answers 500, so its runs keep being retried."""
    state = Failing("", [])

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        state.calls.append(time.monotonic())
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with rs.listening(app) as port:
        state.url = f"http://127.0.0.1:{port}/hook"
        yield state


async def _until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_deleting_a_schedule_cancels_its_pending_retries(stack: Stack, ch: AsyncClient,
                                                               failing: Failing) -> None:
    company = rs.company("safety-delete")
    token = await asyncio.to_thread(support.create_token, stack, company)
    async with rs.service(stack, "query-safety-delete", webhook_allow=LOCAL) as (session, base):
        slot = _slot()
        sid = await _schedule(session, base, token, failing.url, slot)
        name = f"sched-safety-delete-{sid[:6]}"
        stack.spawn(name, "scheduler", "--now", (slot + timedelta(seconds=30)).isoformat(),
                    settings=local(stack.settings, report_retry_s=1.5, scheduler_tick_s=0.3, report_max_attempts=9))
        try:
            await _until(lambda: _has(ch, sid, "failed"))
            async with session.delete(f"{base}/reports/schedules/{sid}", headers=support.bearer(token)) as answer:
                assert answer.status == 204
            deleted_at, calls = time.monotonic(), len(failing.calls)
            await _until(lambda: _has(ch, sid, "abandoned"))
            await asyncio.sleep(max(0.0, deleted_at + 5.0 - time.monotonic()))  # past two more backoffs
            assert len(failing.calls) <= calls, "no retry after the schedule was deleted"
            runs = await _runs(ch, sid)
            assert runs[-1][2:] == ("abandoned", DELETED), runs
        finally:
            stack.stop(name, signal.SIGKILL)


async def _schedule(session: ClientSession, base: str, token: str, url: str, slot: datetime) -> str:
    """POST a daily webhook schedule with `token`; its id."""
    async with session.post(f"{base}/reports/schedules", json=_daily(slot, url),
                            headers=support.bearer(token)) as answer:
        assert answer.status == 201, await answer.text()
        return (await answer.json())["id"]


async def _has(ch: AsyncClient, sid: str, status: str) -> bool:
    return any(r[2] == status for r in await _runs(ch, sid))


async def test_revoking_the_token_that_created_a_schedule_stops_its_deliveries(stack: Stack, ch: AsyncClient,
                                                                               failing: Failing) -> None:
    company = rs.company("safety-revoke")
    creator = await asyncio.to_thread(support.create_token, stack, company)
    other = await asyncio.to_thread(support.create_token, stack, company)
    async with rs.service(stack, "query-safety-revoke", webhook_allow=LOCAL) as (session, base):
        slot = _slot()
        sid = await _schedule(session, base, creator, failing.url, slot)
        creator_id = tokens.parse(creator)[0]  # type: ignore[index]
        assert support.cli(stack, "tokens", "revoke", creator_id).returncode == 0
        code, log = await _scheduler(stack, f"sched-safety-revoke-{sid[:6]}", local(stack.settings),
                                     slot + timedelta(seconds=30))
        assert failing.calls == [], "nothing is delivered for a revoked token's schedule"
        assert [(r[2], r[3]) for r in await _runs(ch, sid)] == [("abandoned", REVOKED)], log
        async with session.get(f"{base}/reports/schedules", headers=support.bearer(other)) as answer:
            listed = (await answer.json())["schedules"]
        assert listed[0]["last_run"]["error"] == REVOKED, "the company sees why it stopped"


# --- caps and fairness ---------------------------------------------------------------------------------------


async def test_a_company_has_at_most_its_cap_of_schedules(api: Api) -> None:
    mine = await rs.token(api.stack, rs.company("safety-cap-1"))
    theirs = await rs.token(api.stack, rs.company("safety-cap-2"))
    body = {"recurrence": {"frequency": "daily", "time": "06:00"}, "destination": {"type": "directory"}}
    for _ in range(3):
        await _created(api, mine, body)  # type: ignore[arg-type]
    status, answer = await _post(api, mine, body)  # type: ignore[arg-type]
    assert status == 409 and "limit" in answer["error"]["message"], answer
    assert (await _post(api, theirs, body))[0] == 201, "another company is not affected"  # type: ignore[arg-type]


@pytest.fixture
async def blackhole() -> AsyncIterator[str]:
    """A receiver on 127.0.0.1 that accepts connections and never answers."""
    async with rs.blackhole() as url:
        yield url


async def test_one_companys_blackholed_webhooks_do_not_delay_anothers_report(
        api: Api, blackhole: str, tmp_path: Path) -> None:
    slow_co, fast_co = rs.company("safety-fair-slow"), rs.company("safety-fair-fast")
    (slow_token, _), (fast_token, _) = await tokens.create(api.ch, slow_co), await tokens.create(api.ch, fast_co)
    slot = _slot()
    slow = [await _stored(api.ch, slow_co, slow_token, blackhole, slot) for _ in range(3)]
    spec = schedules.parse_spec({**_daily(slot, blackhole), "destination": {"type": "directory"}}, egress.Policy())
    fast = (await schedules.create(api.ch, fast_co, fast_token, spec)).schedule_id
    settings: Settings = local(api.stack.settings, reports_dir=str(tmp_path), webhook_timeout_s=6.0,
                               report_max_attempts=1, report_runs_max=2, report_company_runs_max=1)
    name = f"sched-safety-fair-{fast[:6]}"
    task = asyncio.create_task(_scheduler(api.stack, name, settings, slot + timedelta(seconds=30)))
    try:
        await _until(lambda: _has(api.ch, fast, "delivered"), timeout=60)
        finished = [sid for sid in slow if await _has(api.ch, sid, "abandoned")]
        assert finished == [], "the other company's report waited for a blackholed webhook to time out"
        code, log = await task
        errors = {(await _runs(api.ch, sid))[-1][3] for sid in slow}
        assert errors == {"timed out: the receiver did not answer within 6 s"}, log
    finally:
        api.stack.stop(name, signal.SIGKILL)
        await asyncio.gather(task, return_exceptions=True)
        for sid in slow:
            await schedules.delete(api.ch, slow_co, sid)
        await schedules.delete(api.ch, fast_co, fast)
