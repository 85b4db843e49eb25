"""A schedule's run history: when each run was due, the period it covered, how it ended, how many
rows it delivered and where, and why it failed.

The scheduler appends one `report_runs` row per attempt start and outcome; a run here is the
latest row of one (schedule, scheduled instant), with its attempts counted. Every read is scoped
to the caller's company, so another company's schedule id has no history (404), like its schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.auth import principal
from query.access.tenant import CONDITION, TenantScope
from query.errors import NotFound, json_response
from query.parsing import integer, reject_unknown
from query.reports import delivery, schedules, sql
from query.reports.filters import single_values
from query.reports.sql import utc
from query.state import CH, SETTINGS
from services.runtime.settings import Settings

SCHEDULE_ID = re.compile(r"^[0-9a-f]{32}$")
RUN_ID = re.compile(r"^[0-9]{1,15}$")  # the scheduled instant in Unix milliseconds
DEFAULT_RUNS, MAX_RUNS = 50, 500
_LATEST = "(attempt, recorded_at)"


@dataclass(frozen=True)
class Run:
    """One run as its latest record tells it."""

    scheduled_for: datetime
    period_from: datetime
    period_until: datetime
    status: str
    attempts: int
    rows: int
    size: int
    target: str
    error: str
    recorded_at: datetime

    @property
    def run_id(self) -> str:
        return str(int(self.scheduled_for.timestamp() * 1000))


async def history(ch: AsyncClient, company_id: str, schedule_id: str, limit: int = DEFAULT_RUNS,
                  scheduled_for: datetime | None = None) -> list[Run]:
    """Newest first; with `scheduled_for`, only that run."""
    params: dict[str, Any] = {"id": schedule_id, "limit": limit}
    only = ""
    if scheduled_for is not None:
        only = " AND scheduled_for = {at:DateTime64(3, 'UTC')}"
        params["at"] = sql.ch_time(scheduled_for)
    result = await tenant.query(ch, TenantScope(company_id).statement(
        f"SELECT scheduled_for, argMax(period_from, {_LATEST}), argMax(period_until, {_LATEST}), "
        f"argMax(status, {_LATEST}), max(attempt), argMax(rows, {_LATEST}), argMax(bytes, {_LATEST}), "
        f"argMax(target, {_LATEST}), argMax(error, {_LATEST}), max(recorded_at) FROM report_runs "
        f"WHERE {CONDITION} AND schedule_id = {{id:String}}" + only +
        " GROUP BY scheduled_for ORDER BY scheduled_for DESC LIMIT {limit:UInt32}", params))
    return [Run(utc(at), utc(since), utc(until), status, attempts, rows, size, target, error, utc(rec))
            for at, since, until, status, attempts, rows, size, target, error, rec in result.result_rows]


def period_label(since: datetime, until: datetime, tz: tzinfo) -> str:
    """A file's name part for the period it covers: `2026-11-28` for a day, `2026-11-16_2026-11-22`
    for a week or month (`until` is exclusive, so its last day is the day before)."""
    first, last = since.astimezone(tz), (until - timedelta(milliseconds=1)).astimezone(tz)
    return f"{first:%Y-%m-%d}" if first.date() == last.date() else f"{first:%Y-%m-%d}_{last:%Y-%m-%d}"


def delivered_file(settings: Settings, company_id: str, run: Run) -> Path | None:
    """The file a directory delivery wrote, if it is still there and inside the company's folder."""
    if run.status != "delivered" or not run.target.startswith("/"):
        return None
    root = delivery.company_dir(settings, company_id).resolve()
    path = Path(run.target).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def run_json(settings: Settings, company_id: str, schedule: schedules.Schedule, run: Run) -> dict[str, Any]:
    """A run for the API: times in the schedule's zone, a directory target relative to the company's
    folder (the server's own paths are not the tenant's business), and the download link if any."""
    tz = schedule.recurrence.tz
    file = delivered_file(settings, company_id, run)
    return {"id": run.run_id, "scheduled_for": run.scheduled_for.astimezone(tz).isoformat(),
            "period": {"from": run.period_from.astimezone(tz).isoformat(),
                       "until": run.period_until.astimezone(tz).isoformat()},
            "status": run.status, "attempts": run.attempts, "rows": run.rows, "bytes": run.size,
            "destination": _where(settings, company_id, run) or None, "error": run.error or None,
            "recorded_at": sql.utc_seconds(run.recorded_at),
            "download": (f"/reports/schedules/{schedule.schedule_id}/runs/{run.run_id}/file" if file else None)}


def _where(settings: Settings, company_id: str, run: Run) -> str:
    """A webhook's target as recorded (URL without its query, HTTP status); a file's path relative
    to the company's folder, even after it was removed."""
    if not run.target.startswith("/"):
        return run.target
    path = Path(run.target)
    root = delivery.company_dir(settings, company_id).resolve()
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else path.name


async def owned_schedule(request: web.Request) -> schedules.Schedule:
    """The schedule named in the path, if the caller's company has it (404 otherwise, same words)."""
    schedule_id = request.match_info["schedule_id"]
    found = None
    if SCHEDULE_ID.match(schedule_id):
        found = await schedules.get(request.app[CH], principal(request).company_id, schedule_id)
    if found is None:
        raise NotFound(f"no schedule {schedule_id!r} for this token's company", "id")
    return found


async def list_runs(request: web.Request) -> web.Response:
    """GET /reports/schedules/{id}/runs: the schedule's runs, newest first (`limit`, default 50)."""
    params = single_values(request.query)
    reject_unknown(params, ("limit",))
    limit = integer(params, "limit", 1, MAX_RUNS, DEFAULT_RUNS)
    schedule = await owned_schedule(request)
    company, settings = principal(request).company_id, request.app[SETTINGS]
    found = await history(request.app[CH], company, schedule.schedule_id, limit)
    return json_response({"schedule_id": schedule.schedule_id,
                          "runs": [run_json(settings, company, schedule, run) for run in found]})


ROUTES: list[web.RouteDef] = [web.get("/reports/schedules/{schedule_id}/runs", list_runs)]
