"""Editing a scheduled report (`PUT /reports/schedules/{id}`): the body is a whole new schedule,
validated exactly as POST validates it (a webhook passes the same egress checks), stored as a newer
version of the same schedule; a schedule that becomes a webhook gets its signing secret, shown once.

The id, creation time and run history stay: runs already made keep the period and destination
they had, and the next occurrence of the new rule is the first to follow it.
"""

from __future__ import annotations

from aiohttp import web

from query.access.auth import principal
from query.errors import NotFound, json_response
from query.parsing import json_object, reject_unknown
from query.reports import egress, egress_guard, schedules
from query.reports.filters import single_values
from query.reports.runs import owned_schedule
from query.state import CH, SETTINGS


async def replace_schedule(request: web.Request) -> web.Response:
    """PUT /reports/schedules/{id}: 200 with the schedule as stored; 404 when the company has no such one."""
    reject_unknown(single_values(request.query), ())
    current = await owned_schedule(request)
    rules = egress.policy(request.app[SETTINGS])
    spec = schedules.parse_spec(await json_object(request), rules)
    if spec["destination"]["type"] == "webhook":
        await egress_guard.check_destination(spec["destination"]["url"], rules)
    updated = await schedules.update(request.app[CH], principal(request).company_id, current.schedule_id, spec)
    if updated is None:
        raise NotFound(f"no schedule {current.schedule_id!r} for this token's company", "id")
    answer = updated.to_json()
    if updated.secret and updated.secret != current.secret:
        answer["signing_secret"] = updated.secret  # shown this once, as on creation
    return json_response(answer)


ROUTES: list[web.RouteDef] = [web.put("/reports/schedules/{schedule_id}", replace_schedule)]
