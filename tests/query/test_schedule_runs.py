"""A schedule's run history, the download of a file it delivered to a directory, and editing it:
through the real `trilha query` process, for the owning company only (another company's token
gets the same 404 as an id that never existed)."""

from __future__ import annotations

import csv
import io
import string
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiohttp import ClientSession
from clickhouse_connect.driver.asyncclient import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.reports import recurrence
from query.reports.runs import period_label
from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.query.scheduler_support import run_due
from tests.stack import Stack

SP = ZoneInfo("America/Sao_Paulo")


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[tuple[ClientSession, str]]:
    async with rs.service(stack, "query-schedule-runs") as running:
        yield running


async def _get(api: tuple[ClientSession, str], path: str, headers: dict[str, str]) -> tuple[int, Any, dict]:
    session, base = api
    async with session.get(base + path, headers=headers) as answer:
        body = await answer.read()
        return answer.status, body, dict(answer.headers)


def _schedule(at: datetime) -> dict[str, Any]:
    return {"name": "diário", "recurrence": {"frequency": "daily", "time": at.strftime("%H:%M"),
                                             "timezone": "America/Sao_Paulo"},
            "range": "previous_day", "destination": {"type": "directory", "path": "auditoria/diario"}}


@dataclass
class Delivered:
    """A company's daily schedule that ran once and wrote its file, and a stranger's token."""

    sid: str
    run: dict[str, Any]
    headers: dict[str, str]
    other: dict[str, str]
    records: list[dict[str, Any]]
    day: date


@pytest.fixture(scope="module")
async def delivered(api: tuple[ClientSession, str], stack: Stack, ch: AsyncClient) -> AsyncIterator[Delivered]:
    mine, theirs = rs.company("runs-mine"), rs.company("runs-theirs")
    headers, other = await rs.token(stack, mine), await rs.token(stack, theirs)
    slot = datetime.now(SP).replace(second=0, microsecond=0) + timedelta(minutes=2)
    day = slot.date() - timedelta(days=1)
    start = datetime.combine(day, time(0, 1), SP).astimezone(UTC)
    records = RecordFactory(seed=5, companies=1).records(37, start=start, step=timedelta(minutes=31),
                                                         company=mine)
    await rs.insert(ch, records)
    session, base = api
    async with session.post(base + "/reports/schedules", json=_schedule(slot), headers=headers) as answer:
        assert answer.status == 201, await answer.text()
        sid = (await answer.json())["id"]
    assert await run_due(stack.settings, ch, slot + timedelta(seconds=20), mine) == ["delivered"]
    status, body, _ = await _get(api, f"/reports/schedules/{sid}/runs", headers)
    assert status == 200, body
    (run,) = orjson.loads(body)["runs"]
    assert datetime.fromisoformat(run["scheduled_for"]) == slot
    yield Delivered(sid, run, headers, other, records, day)
    async with session.delete(f"{base}/reports/schedules/{sid}", headers=headers) as answer:
        assert answer.status == 204  # no schedule left for other tests' scheduler passes


async def test_runs_are_listed_and_the_delivered_file_is_downloaded_by_its_company_only(
        api: tuple[ClientSession, str], delivered: Delivered) -> None:
    run, sid, day = delivered.run, delivered.sid, delivered.day
    assert run["status"] == "delivered" and run["rows"] == 37 and run["attempts"] == 1
    assert datetime.fromisoformat(run["period"]["from"]) == datetime.combine(day, time(0), SP)
    name = f"registros-de-api_{day:%Y-%m-%d}_{sid[:8]}.csv"
    assert run["destination"] == f"auditoria/diario/{name}", "relative to the company's folder, named by period"

    status, body, response_headers = await _get(api, run["download"], delivered.headers)
    assert status == 200
    assert name in response_headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert len(rows) == 1 + 37 and {r[0] for r in rows[1:]} == {r["query_id"] for r in delivered.records}

    for path in (run["download"], f"/reports/schedules/{sid}/runs"):
        status, body, _ = await _get(api, path, delivered.other)
        assert status == 404, "another company sees neither the runs nor the file"
    status, _, _ = await _get(api, f"/reports/schedules/{sid}/runs/{int(run['id']) + 1}/file", delivered.headers)
    assert status == 404


_SEGMENT = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "._-~%", min_size=1, max_size=40),
                     st.from_regex(r"\A[0-9a-f]{32}\Z"), st.integers(0, 10**15).map(str), st.just(".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.one_of(st.none(), _SEGMENT), run=st.one_of(st.none(), _SEGMENT), stranger=st.booleans())
def test_a_delivered_file_never_reaches_another_company(api: tuple[ClientSession, str], delivered: Delivered,
                                                        schedule: str | None, run: str | None,
                                                        stranger: bool) -> None:
    """Whatever ids are asked for, another company never gets the file (404), and the owner gets
    it only at its own run's path; never a 500."""
    sid = delivered.sid if schedule is None else schedule
    run_id = delivered.run["id"] if run is None else run
    path = f"/reports/schedules/{quote(sid, safe='')}/runs/{quote(run_id, safe='')}/file"
    request = urllib.request.Request(api[1] + path, headers=delivered.other if stranger else delivered.headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    owner_own_run = not stranger and sid == delivered.sid and run_id == delivered.run["id"]
    assert status == (200 if owner_own_run else 404), (path, stranger)


@given(since=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
       kind=st.sampled_from(["previous_day", "previous_week", "previous_month"]))
def test_a_file_is_named_by_the_days_its_period_covers(since: datetime, kind: str) -> None:
    start, end = recurrence.period(kind, since.replace(tzinfo=SP), SP)
    label = period_label(start, end, SP)
    last = (end - timedelta(milliseconds=1)).astimezone(SP).date()
    assert label.split("_")[0] == f"{start.astimezone(SP).date():%Y-%m-%d}"
    assert label.split("_")[-1] == f"{last:%Y-%m-%d}"
    assert (len(label.split("_")) == 1) == (kind == "previous_day")


async def test_a_schedule_is_edited_in_place_by_its_company_only(api: tuple[ClientSession, str],
                                                                  stack: Stack) -> None:
    mine = rs.company("edit-mine")
    headers, other = await rs.token(stack, mine), await rs.token(stack, rs.company("edit-theirs"))
    session, base = api
    first = datetime(2026, 1, 1, 6, 0, tzinfo=SP)
    async with session.post(base + "/reports/schedules", json=_schedule(first), headers=headers) as answer:
        sid = (await answer.json())["id"]
    change = {**_schedule(first.replace(hour=7, minute=30)), "filters": {"status": "5xx"}, "name": "erros"}
    async with session.put(f"{base}/reports/schedules/{sid}", json=change, headers=other) as answer:
        assert answer.status == 404
    async with session.put(f"{base}/reports/schedules/{sid}", json={**change, "range": "forever"},
                           headers=headers) as answer:
        assert answer.status == 400 and (await answer.json())["error"]["parameter"] == "range"
    async with session.put(f"{base}/reports/schedules/{sid}", json=change, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
    async with session.get(f"{base}/reports/schedules", headers=headers) as answer:
        (listed,) = (await answer.json())["schedules"]
    assert listed["id"] == sid and listed["recurrence"]["time"] == "07:30"
    assert listed["filters"] == {"status": "5xx"} and listed["name"] == "erros"
    async with session.delete(f"{base}/reports/schedules/{sid}", headers=headers) as answer:
        assert answer.status == 204


async def test_an_edit_to_a_webhook_passes_the_same_egress_checks_as_creation(
        api: tuple[ClientSession, str], stack: Stack) -> None:
    mine = rs.company("edit-hook")
    headers = await rs.token(stack, mine)
    session, base = api
    async with session.post(base + "/reports/schedules", json=_schedule(datetime(2026, 1, 1, 6, tzinfo=SP)),
                            headers=headers) as answer:
        sid = (await answer.json())["id"]
    inside = {**_schedule(datetime(2026, 1, 1, 6, tzinfo=SP)),
              "destination": {"type": "webhook", "url": "https://127.0.0.1:8123/?query=DROP"}}
    async with session.put(f"{base}/reports/schedules/{sid}", json=inside, headers=headers) as answer:
        assert answer.status == 400 and (await answer.json())["error"]["parameter"] == "destination.url"
    async with session.delete(f"{base}/reports/schedules/{sid}", headers=headers) as answer:
        assert answer.status == 204
