"""HTTP routes of the "Registros de API" report: JSON pages, CSV export, print view, dashboard
stats and scheduled reports.

Handlers only read parameters (400 naming the parameter for anything wrong, unknown names
included), take the company from the caller's token and hand over to the module that does the
work; no handler accepts a company from the request.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from query.access.auth import principal
from query.access.tenant import TenantScope
from query.errors import ApiError, BadRequest, NotFound, json_response, shown
from query.parsing import integer, json_object, reject_unknown
from query.reports import csv_export, egress, egress_guard, page, print_view, schedules, stats
from query.reports.filters import FILTER_NAMES, VIEW_NAMES, ReportFilter, View, parse_filter, parse_view, single_values
from query.reports.schedules import Schedule
from query.state import CH, EXPORT_SLOTS, SEARCH_SLOTS, SETTINGS

PAGE_PARAMS = (*FILTER_NAMES, *VIEW_NAMES, "page_size", "cursor")
CSV_PARAMS = (*FILTER_NAMES, *VIEW_NAMES, "sep", "bom")
PRINT_PARAMS = (*FILTER_NAMES, *VIEW_NAMES)
STATS_PARAMS = (*FILTER_NAMES, *VIEW_NAMES, "bucket")
_SCHEDULE_ID = re.compile(r"^[0-9a-f]{32}$")
_CREATING: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


class TooManySchedules(ApiError, status=409):
    """409: the company has as many schedules as TRILHA_REPORT_SCHEDULES_MAX allows."""


MAX_CURSOR = 4096


def _slot_wait(request: web.Request) -> float:
    """How long a report query waits for one of its company's slots before it is a 429."""
    return request.app[SETTINGS].query_slot_wait_s


def _cursor(params: dict[str, str]) -> str | None:
    raw = params.get("cursor", "")
    if len(raw) > MAX_CURSOR:  # counted as sent, as the document's maxLength
        raise BadRequest(f"cursor is {len(raw)} characters long: send the next_cursor of the previous page "
                         "unchanged, or leave cursor out", "cursor")
    return raw.strip() or None


def _search(request: web.Request, allowed: tuple[str, ...]) -> tuple[dict[str, str], View, ReportFilter, str]:
    """What every report read starts from: its parameters (none but `allowed`), the view, the filter
    and the caller's company (from the token, never from the request)."""
    params = single_values(request.query)
    reject_unknown(params, allowed)
    view = parse_view(params)
    return params, view, parse_filter(params, view.tz), principal(request).company_id


async def api_logs(request: web.Request) -> web.Response:
    """GET /reports/api-logs: one page, newest first, `next_cursor` to the following page."""
    params, view, flt, company = _search(request, PAGE_PARAMS)
    size = integer(params, "page_size", 1, page.MAX_PAGE_SIZE, page.DEFAULT_PAGE_SIZE)
    secret = request.app[SETTINGS].cursor_secret
    after = page.position(_cursor(params), flt, company, secret)
    async with request.app[SEARCH_SLOTS].hold(company, _slot_wait(request)):
        return json_response(await page.fetch(request.app[CH], flt, TenantScope(company), size, after, secret))


async def api_logs_csv(request: web.Request) -> web.StreamResponse:
    """GET /reports/api-logs.csv: every matching row, streamed."""
    params, view, flt, company = _search(request, CSV_PARAMS)
    options = csv_export.parse_options(params)
    async with request.app[EXPORT_SLOTS].hold(company):  # no waiting: beyond the cap, 429 at once
        return await _stream_csv(request, csv_export.stream(request.app[CH], flt, TenantScope(company), view,
                                                            options), view)


async def _stream_csv(request: web.Request, chunks: AsyncIterator[bytes], view: View) -> web.StreamResponse:
    async with aclosing(chunks):
        first = await anext(chunks)  # the query has started: a failure is still a JSON error here
        name = csv_export.file_name(view.lang, datetime.now(UTC).astimezone(view.tz))
        response = web.StreamResponse(headers={
            "Content-Type": csv_export.CONTENT_TYPE, "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    return response


async def api_logs_print(request: web.Request) -> web.Response:
    """GET /reports/api-logs/print: printable HTML of the newest rows, up to the print limit."""
    params, view, flt, company = _search(request, PRINT_PARAMS)
    async with request.app[SEARCH_SLOTS].hold(company, _slot_wait(request)):
        found = await print_view.newest_rows(request.app[CH], TenantScope(company), flt, view)
    html = print_view.render(found, params, view, datetime.now(UTC))
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": print_view.CSP, "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})


async def api_logs_stats(request: web.Request) -> web.Response:
    """GET /reports/api-logs/stats: totals, by status class, by resource, per bucket, p50/p95."""
    params, view, flt, company = _search(request, STATS_PARAMS)
    bucket = stats.bucket_size(flt, params.get("bucket", "").strip() or None)
    async with request.app[SEARCH_SLOTS].hold(company, _slot_wait(request)):
        return json_response(await stats.compute(request.app[CH], flt, TenantScope(company), view, bucket))


async def create_schedule(request: web.Request) -> web.Response:
    """POST /reports/schedules: validate and store; 201 with the schedule, its next run and, for a
    webhook, its signing secret (shown this once). A webhook must pass the egress policy, DNS
    answer included; a company has at most `report_schedules_max` schedules."""
    reject_unknown(single_values(request.query), ())
    settings = request.app[SETTINGS]
    rules = egress.policy(settings)
    spec = schedules.parse_spec(await json_object(request), rules)
    if spec["destination"]["type"] == "webhook":
        await egress_guard.check_destination(spec["destination"]["url"], rules)
    caller, ch = principal(request), request.app[CH]
    lock = _CREATING.setdefault(caller.company_id, asyncio.Lock())
    async with lock:  # one creation at a time per company, so the cap cannot be raced past
        if len(await schedules.list_for(ch, caller.company_id)) >= settings.report_schedules_max:
            raise TooManySchedules(f"this company already has {settings.report_schedules_max} schedules, the "
                                   "limit: delete one (DELETE /reports/schedules/{id}) before creating another")
        created = await schedules.create(ch, caller.company_id, caller.token_id, spec)
    answer = _schedule_json(created, None, datetime.now(UTC))
    if created.secret:
        answer["signing_secret"] = created.secret
    return json_response(answer, status=201, headers={"Location": f"/reports/schedules/{created.schedule_id}"})


async def list_schedules(request: web.Request) -> web.Response:
    """GET /reports/schedules: the company's schedules with their next and last runs."""
    reject_unknown(single_values(request.query), ())
    ch, company = request.app[CH], principal(request).company_id
    found = await schedules.list_for(ch, company)
    last: dict[str, schedules.RunState] = {}
    for state in await schedules.run_states(ch, company):
        last[state.schedule_id] = state  # ordered by scheduled_for: the newest wins
    now = datetime.now(UTC)
    return json_response({"schedules": [_schedule_json(s, last.get(s.schedule_id), now) for s in found]})


async def delete_schedule(request: web.Request) -> web.Response:
    """DELETE /reports/schedules/{id}: 204; 404 when the company has no such schedule."""
    schedule_id = request.match_info["schedule_id"]
    if not _SCHEDULE_ID.match(schedule_id) or not await schedules.delete(
            request.app[CH], principal(request).company_id, schedule_id):
        raise NotFound(f"no schedule {shown(schedule_id)} for this token's company", "id")
    return web.Response(status=204)


def _schedule_json(schedule: Schedule, last: schedules.RunState | None, now: datetime) -> dict[str, Any]:
    rule = schedule.recurrence
    upcoming = rule.next_after(max(now, schedule.created_at))
    out = schedule.to_json()
    out["next_run_at"] = upcoming.astimezone(rule.tz).isoformat() if upcoming else None
    out["last_run"] = None if last is None else {
        "scheduled_for": last.scheduled_for.astimezone(rule.tz).isoformat(), "status": last.status,
        "attempts": last.attempts, "rows": last.rows, "error": last.error or None}
    return out


ROUTES: list[web.RouteDef] = [
    web.get("/reports/api-logs", api_logs),
    web.get("/reports/api-logs.csv", api_logs_csv, allow_head=False),  # HEAD must not run a full export
    web.get("/reports/api-logs/print", api_logs_print),
    web.get("/reports/api-logs/stats", api_logs_stats),
    web.post("/reports/schedules", create_schedule),
    web.get("/reports/schedules", list_schedules),
    web.delete("/reports/schedules/{schedule_id}", delete_schedule),
]
