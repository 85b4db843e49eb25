"""Scheduled reports end to end: the schedules API, and the real `trilha scheduler` process running
a due schedule (made due with `--now`, not by waiting) and delivering the CSV to a directory and
to a webhook served by this test — once per occurrence, none skipped, retried after a failure,
resumed after a crash, and never with another company's records."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import signal
import time as py_time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession, web
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime.settings import Settings
from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.stack import Stack

SP = ZoneInfo("America/Sao_Paulo")

NAME = "query-schedules"  # the `trilha query` process these tests use (its log: <data_dir>/NAME.log)
LOCAL = "127.0.0.1/32"  # the test's webhook receivers listen here: allow-listed, as an operator would


@dataclass
class Api:
    session: ClientSession
    base: str
    ch: AsyncClient
    stack: Stack


@pytest.fixture(scope="module")
async def api(stack: Stack, ch: AsyncClient) -> AsyncIterator[Api]:
    async with rs.service(stack, NAME, webhook_allow=LOCAL) as (session, base):
        yield Api(session, base, ch, stack)


async def _post(api: Api, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with api.session.post(f"{api.base}/reports/schedules", json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def _delete(api: Api, headers: dict[str, str], schedule_id: str) -> int:
    async with api.session.delete(f"{api.base}/reports/schedules/{schedule_id}", headers=headers) as answer:
        return answer.status


async def _list(api: Api, headers: dict[str, str]) -> list[dict[str, Any]]:
    async with api.session.get(f"{api.base}/reports/schedules", headers=headers) as answer:
        assert answer.status == 200
        return (await answer.json())["schedules"]


def _slot() -> datetime:
    """A local minute two minutes ahead: the first occurrence of a schedule created now at that time."""
    return datetime.now(SP).replace(second=0, microsecond=0) + timedelta(minutes=2)


def _day_records(company: str, day: date, count: int, seed: int) -> list[rs.Record]:
    start = datetime.combine(day, time(0, 0, 30), SP).astimezone(UTC)
    return RecordFactory(seed=seed, companies=1).records(count, start=start, step=timedelta(minutes=13),
                                                         company=company)


async def _created(api: Api, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST a schedule that must be accepted; its JSON as answered."""
    status, created = await _post(api, headers, body)
    assert status == 201, created
    return created


async def _yesterdays_records(api: Api, name: str, count: int, seed: int
                              ) -> tuple[dict[str, str], datetime, list[rs.Record]]:
    """A fresh company's token, the next minute a schedule can be due, and `count` of the company's
    records stored for the day before it."""
    mine = rs.company(name)
    headers, slot = await rs.token(api.stack, mine), _slot()
    records = _day_records(mine, slot.date() - timedelta(days=1), count, seed)
    await rs.insert(api.ch, records)
    return headers, slot, records


def _rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def local(settings: Settings, **changes: Any) -> Settings:
    """Scheduler settings that allow-list the test's receivers on 127.0.0.1."""
    return replace(settings, webhook_allow=LOCAL, **changes)


async def _scheduler(stack: Stack, name: str, settings: Settings, now: datetime) -> tuple[int, str]:
    proc = stack.spawn(name, "scheduler", "--once", "--now", now.isoformat(), settings=settings)
    code = await asyncio.to_thread(proc.wait, 180)
    return code, stack.log(name)


async def _runs(ch: AsyncClient, schedule_id: str) -> list[tuple[str, int, str, str]]:
    result = await ch.query("SELECT toString(scheduled_for), attempt, status, error FROM report_runs "
                            "WHERE schedule_id = {id:String} ORDER BY scheduled_for, attempt, recorded_at",
                            parameters={"id": schedule_id})
    return [tuple(r) for r in result.result_rows]


# --- the API -------------------------------------------------------------------------------------------------

BAD_BODIES = [
    ({"recurrence": {"frequency": "hourly"}}, "recurrence.frequency"),
    ({"recurrence": {"frequency": "weekly", "weekday": 9}}, "recurrence.weekday"),
    ({"recurrence": {"frequency": "monthly", "day": 0}}, "recurrence.day"),
    ({"recurrence": {"frequency": "daily", "time": "25:00"}}, "recurrence.time"),
    ({"recurrence": {"frequency": "daily", "timezone": "Mars/Base"}}, "recurrence.timezone"),
    ({"destination": {"type": "directory", "path": "../../etc"}}, "destination.path"),
    ({"destination": {"type": "directory", "path": "/tmp/x"}}, "destination.path"),
    ({"destination": {"type": "webhook", "url": "ftp://example.com/x"}}, "destination.url"),
    ({"destination": {"type": "s3"}}, "destination.type"),
    ({"filters": {"status": "999"}}, "filters.status"),
    ({"filters": {"ip": "10.0.0.0/40"}}, "filters.ip"),
    ({"filters": {"from": "01/01/2026 00:00"}}, "filters.from"),
    ({"filters": {"company_id": "someone-else"}}, "filters.company_id"),
    ({"range": "forever"}, "range"),
    ({"range": {}}, "range"),  # was a 500 (unhashable dict), found by schemathesis
    ({"csv": {"bom": 0}}, "csv.bom"),  # the document says boolean: 0, "" or "sim" are refused
    ({"csv": {"sep": "TAB"}}, "csv.sep"),
    ({"lang": 5}, "lang"),  # was silently pt
    ({"recurrence": {"frequency": "daily", "timezone": 0}}, "recurrence.timezone"),  # was silently the default
    ({"format": "xlsx"}, "format"),
    ({"owner": "x"}, "owner"),
]


@pytest.fixture(scope="module")
async def someone(api: Api) -> dict[str, str]:
    return await rs.token(api.stack, rs.company("rep-sched-bad"))


@pytest.mark.parametrize("change, parameter", BAD_BODIES, ids=[p for _, p in BAD_BODIES])
async def test_a_bad_schedule_is_a_400_naming_the_field(api: Api, someone: dict[str, str], change: dict[str, Any],
                                                        parameter: str) -> None:
    headers = someone
    body = {"recurrence": {"frequency": "daily", "time": "06:00"},
            "destination": {"type": "directory", "path": "diario"}, **change}
    status, answer = await _post(api, headers, body)
    assert status == 400, answer
    assert answer["error"]["parameter"] == parameter


async def test_clickhouse_is_refused_even_inside_the_allow_listed_range(api: Api, someone: dict[str, str]) -> None:
    ch_url = api.stack.settings.clickhouse_url.rstrip("/")  # on 127.0.0.1, which this service allow-lists
    for url in (f"{ch_url}/?query=SELECT+1", ch_url.replace("127.0.0.1", "localhost") + "/"):
        status, answer = await _post(api, someone, {"recurrence": {"frequency": "daily"},
                                                    "destination": {"type": "webhook", "url": url}})
        assert status == 400 and "own database" in answer["error"]["message"], answer


async def test_schedules_are_created_listed_and_deleted_within_one_company(api: Api) -> None:
    mine, theirs = rs.company("rep-sched-api"), rs.company("rep-sched-api-other")
    headers, other = await rs.token(api.stack, mine), await rs.token(api.stack, theirs)
    created = await _created(api, headers, {
        "name": "Erros da semana", "filters": {"status": "5xx", "error": "sim", "client": "João"},
        "recurrence": {"frequency": "weekly", "weekday": "segunda", "time": "07:30", "timezone": "America/Recife"},
        "destination": {"type": "webhook", "url": "https://hooks.example.com/trilha"}, "lang": "en",
        "csv": {"sep": ",", "bom": False}})
    assert created["recurrence"] == {"frequency": "weekly", "time": "07:30", "timezone": "America/Recife",
                                     "weekday": 0}
    assert created["range"] == "previous_week" and created["format"] == "csv"
    assert created["signing_secret"].startswith("whsec_"), "a webhook's signing secret is shown once, here"
    assert created["filters"] == {"status": "5xx", "error": "sim", "client": "João"}
    upcoming = datetime.fromisoformat(created["next_run_at"])
    assert upcoming.weekday() == 0 and upcoming.time() == time(7, 30) and upcoming > datetime.now(UTC)
    try:
        listed = await _list(api, headers)
        assert [s["id"] for s in listed] == [created["id"]] and "signing_secret" not in listed[0]
        assert await _list(api, other) == []
        assert await _delete(api, other, created["id"]) == 404, "another company cannot delete it"
        assert [s["id"] for s in await _list(api, headers)] == [created["id"]]
    finally:
        assert await _delete(api, headers, created["id"]) == 204
    assert await _list(api, headers) == []
    assert await _delete(api, headers, created["id"]) == 404


# --- the scheduler -------------------------------------------------------------------------------------------


async def test_directory_delivery_once_per_occurrence_none_skipped_company_only(
        api: Api, tmp_path: Path) -> None:
    mine, theirs = rs.company("rep-sched-dir"), rs.company("rep-sched-dir-other")
    headers = await rs.token(api.stack, mine)
    slot = _slot()
    day1, day2 = slot.date() - timedelta(days=1), slot.date()
    mine1, mine2 = _day_records(mine, day1, 90, 1), _day_records(mine, day2, 40, 2)
    mine1[5]["client_name"] = 'Ana; "Zé",\nSão Paulo'
    await rs.insert(api.ch, mine1 + mine2 + _day_records(theirs, day1, 50, 3))
    sid = (await _created(api, headers, {
        "filters": {}, "recurrence": {"frequency": "daily", "time": slot.strftime("%H:%M"),
                                      "timezone": "America/Sao_Paulo"},
        "destination": {"type": "directory", "path": "financeiro/diario"}}))["id"]
    settings = replace(api.stack.settings, reports_dir=str(tmp_path / "reports"))
    folder = tmp_path / "reports" / mine / "financeiro" / "diario"
    try:
        code, log = await _scheduler(api.stack, f"sched-dir-1-{sid[:6]}", settings, slot + timedelta(seconds=30))
        assert code == 0, log
        first = folder / f"registros-de-api_{day1:%Y-%m-%d}_{sid[:8]}.csv"  # named by the day it covers
        rows = _rows(first.read_bytes())
        assert rows[0][0] == "Código"
        assert [r[0] for r in rows[1:]] == rs.newest_first(mine1), "the previous day's records, this company's only"
        assert {r[0]: r for r in rows[1:]}[mine1[5]["query_id"]][2].startswith('Ana; "Zé",\nSão Paulo')
        stamp = first.stat().st_mtime_ns

        code, log = await _scheduler(api.stack, f"sched-dir-2-{sid[:6]}", settings, slot + timedelta(seconds=90))
        assert code == 0, log
        assert first.stat().st_mtime_ns == stamp and len(await _runs(api.ch, sid)) == 2, "no run repeated"

        later = slot + timedelta(days=3, seconds=30)
        code, log = await _scheduler(api.stack, f"sched-dir-3-{sid[:6]}", settings, later)
        assert code == 0, log
        runs = await _runs(api.ch, sid)
        delivered = [r for r in runs if r[2] == "delivered"]
        assert len(delivered) == 4 and all(r[1] == 1 for r in delivered), runs
        second = folder / f"registros-de-api_{day2:%Y-%m-%d}_{sid[:8]}.csv"
        assert [r[0] for r in _rows(second.read_bytes())[1:]] == rs.newest_first(mine2)
        assert len(list(folder.glob("*.csv"))) == 4, "every missed occurrence ran, in order, none skipped"
        assert not list(folder.glob(".*")), "no partial files left behind"
        listed = (await _list(api, headers))[0]
        assert listed["last_run"]["status"] == "delivered"
        assert datetime.fromisoformat(listed["last_run"]["scheduled_for"]) == slot + timedelta(days=3)
    finally:
        await _delete(api, headers, sid)


@dataclass
class Hook:
    calls: list[tuple[dict[str, str], bytes]]
    fail: int
    url: str


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    state = Hook([], 0, "")

    async def receive(request: web.Request) -> web.Response:
        state.calls.append((dict(request.headers), await request.read()))
        if state.fail > 0:
            state.fail -= 1
            return web.Response(status=500, text="not now")
        return web.Response(status=204)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/hook", receive)
    async with rs.listening(app) as port:
        state.url = f"http://127.0.0.1:{port}/hook?key=s3cr3t"
        yield state


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README tells a receiver to do with X-Trilha-Signature, written out independently."""
    fields = dict(part.split("=", 1) for part in headers["X-Trilha-Signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(py_time.time() - int(fields["t"])) < 300


async def test_webhook_receives_the_signed_csv_after_a_retry(api: Api, hook: Hook) -> None:
    headers, slot, records = await _yesterdays_records(api, "rep-sched-hook", 60, 4)
    created = await _created(api, headers, {
        "filters": {"status": "2xx"}, "range": "previous_day",
        "recurrence": {"frequency": "monthly", "day": slot.day, "time": slot.strftime("%H:%M")},
        "destination": {"type": "webhook", "url": hook.url}})
    sid, secret = created["id"], created["signing_secret"]
    hook.fail = 1
    settings = local(api.stack.settings, report_retry_s=0.3)
    try:
        code, log = await _scheduler(api.stack, f"sched-hook-{sid[:6]}", settings, slot + timedelta(seconds=30))
        assert code == 0, log
        assert len(hook.calls) == 2, "the failed delivery was retried"
        (first_headers, _), (sent, body) = hook.calls
        assert sent["Idempotency-Key"] == first_headers["Idempotency-Key"], "a retry is the same run"
        assert verified(secret, sent, body) and verified(secret, *hook.calls[0]), "every delivery is signed"
        assert not verified(secret, sent, body + b"x") and not verified("whsec_other", sent, body)
        assert sent["Content-Type"].startswith("text/csv")
        rows = _rows(body)
        want = [r for r in records if 200 <= r["status"] < 300]
        assert [r[0] for r in rows[1:]] == rs.newest_first(want)
        assert sent["X-Trilha-Rows"] == str(len(want))
        runs = await _runs(api.ch, sid)
        assert [(r[1], r[2]) for r in runs] == [(1, "started"), (1, "failed"), (2, "started"), (2, "delivered")]
        assert runs[1][3] == "the receiver answered HTTP 500"
        assert "s3cr3t" not in log, "a webhook's query string (often a secret) is not logged"
    finally:
        await _delete(api, headers, sid)


async def test_a_run_cut_short_by_a_crash_is_finished_after_restart_once(api: Api, hook: Hook) -> None:
    headers, slot, records = await _yesterdays_records(api, "rep-sched-crash", 30, 5)
    sid = (await _created(api, headers, {
        "recurrence": {"frequency": "weekly", "weekday": slot.weekday(), "time": slot.strftime("%H:%M")},
        "range": "previous_day", "destination": {"type": "webhook", "url": hook.url}}))["id"]
    now = slot + timedelta(seconds=30)
    hook.fail = 1_000
    slow = local(api.stack.settings, report_retry_s=3600.0, scheduler_tick_s=0.5)
    name = f"sched-crash-{sid[:6]}"
    api.stack.spawn(name, "scheduler", "--now", now.isoformat(), settings=slow)
    try:
        for _ in range(300):
            if any(r[2] == "failed" for r in await _runs(api.ch, sid)):
                break
            await asyncio.sleep(0.2)
        api.stack.stop(name, signal.SIGKILL)
        assert [(r[1], r[2]) for r in await _runs(api.ch, sid)] == [(1, "started"), (1, "failed")]
        hook.fail = 0
        fast = local(api.stack.settings, report_retry_s=0.3)
        code, log = await _scheduler(api.stack, f"{name}-after", fast, now + timedelta(seconds=5))
        assert code == 0, log
        code, log = await _scheduler(api.stack, f"{name}-again", fast, now + timedelta(seconds=10))
        assert code == 0, log
        runs = await _runs(api.ch, sid)
        assert [(r[1], r[2]) for r in runs] == [(1, "started"), (1, "failed"), (2, "started"), (2, "delivered")]
        delivered = [body for sent, body in hook.calls[-1:]]
        assert [r[0] for r in _rows(delivered[0])[1:]] == rs.newest_first(records)
        assert sum(1 for _ in hook.calls) == 2, "one failed delivery, then exactly one that worked"
    finally:
        api.stack.stop(name, signal.SIGKILL)
        await _delete(api, headers, sid)


# --- when runs are due (the rule alone, no clock) ----------------------------------------------------------


def test_occurrences_follow_the_rule_in_its_time_zone() -> None:
    from query.reports import recurrence

    monthly = recurrence.parse({"frequency": "monthly", "day": 31, "time": "06:00", "timezone": "America/Sao_Paulo"})
    after = datetime(2026, 1, 15, tzinfo=SP)
    got = [at.astimezone(SP) for at in monthly.occurrences(after, after + timedelta(days=110))]
    assert [(d.month, d.day, d.hour) for d in got] == [(1, 31, 6), (2, 28, 6), (3, 31, 6), (4, 30, 6)]
    weekly = recurrence.parse({"frequency": "weekly", "weekday": "Sexta-feira", "time": "23:30", "timezone": "UTC"})
    fridays = list(weekly.occurrences(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, 23, 30, tzinfo=UTC)))
    assert fridays == [datetime(2026, 3, d, 23, 30, tzinfo=UTC) for d in (6, 13, 20)], "(after, until]"
    berlin = recurrence.parse({"frequency": "daily", "time": "02:30", "timezone": "Europe/Berlin"})
    around_dst = list(berlin.occurrences(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)))
    assert len(around_dst) == 3, "a time inside the spring-forward gap still runs that day, once"


def test_each_run_covers_the_period_before_its_own() -> None:
    from query.reports.recurrence import period

    run = datetime(2026, 3, 4, 6, 0, tzinfo=SP)  # a Wednesday
    assert period("previous_day", run, SP) == (datetime(2026, 3, 3, tzinfo=SP), datetime(2026, 3, 4, tzinfo=SP))
    assert period("previous_week", run, SP) == (datetime(2026, 2, 23, tzinfo=SP), datetime(2026, 3, 2, tzinfo=SP))
    assert period("previous_month", run, SP) == (datetime(2026, 2, 1, tzinfo=SP), datetime(2026, 3, 1, tzinfo=SP))
