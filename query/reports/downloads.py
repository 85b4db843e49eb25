"""Download of a report file a schedule delivered to a directory on the server.

A file is reached only through its run: the run is looked up with the caller's company, so
another company's schedule or run answers 404 exactly like one that never existed, and the path
the run recorded is served only if it still resolves (symlinks followed) inside the company's own
reports folder. Nothing from the request becomes part of a path.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from query.access.auth import principal
from query.errors import NotFound
from query.parsing import reject_unknown
from query.reports import runs
from query.reports.filters import single_values
from query.state import CH, SETTINGS


async def download(request: web.Request) -> web.FileResponse:
    """GET /reports/schedules/{id}/runs/{run}/file: the CSV that run delivered, as an attachment."""
    reject_unknown(single_values(request.query), ())
    run_id = request.match_info["run_id"]
    schedule = await runs.owned_schedule(request)
    company = principal(request).company_id
    found = []
    if runs.RUN_ID.match(run_id):
        at = datetime.fromtimestamp(int(run_id) / 1000, UTC)
        found = await runs.history(request.app[CH], company, schedule.schedule_id, 1, scheduled_for=at)
    path = runs.delivered_file(request.app[SETTINGS], company, found[0]) if found else None
    if path is None:
        raise NotFound(f"run {run_id!r} of this schedule delivered no file to a directory that is still there",
                       "run")
    return web.FileResponse(path, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{path.name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


ROUTES: list[web.RouteDef] = [web.get("/reports/schedules/{schedule_id}/runs/{run_id}/file", download)]
