"""HTTP handlers of the Events API: `POST /events`, also answered at `POST /log` (the seed path).

Answers use the platform's shape, errors included, so the seed platform's clients work unchanged:
`{"Result": [records], "Status": {"code": 200, "message": "OK"}, "Cursor": "..." | null}`; an
error has `"Result": []`, `"Cursor": null` and `Status` `{"code", "message", "parameter"}`.
Every lookup is filtered by the caller's company: another company's QueryId is a 404 worded
exactly like a QueryId that does not exist, and a cursor is bound to the company and search.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from query import parsing
from query.access import auth
from query.access.fair_use import Budgeted
from query.access.tenant import TenantScope
from query.calls import cursor
from query.calls.keyset import Key
from query.errors import BadRequest, NotFound, error_shape, json_response
from query.events import params as events_params
from query.events import store as events_store
from query.events.params import EventsRequest
from query.state import CH, SEARCH_SLOTS, SETTINGS
from services.proofs import prover

CURSOR_KIND = "events"


def platform_body(status: int, message: str, parameter: str | None) -> dict[str, Any]:
    """The platform's answer shape for an error (also used by 401s on these paths)."""
    return {"Result": [], "Status": {"code": status, "message": message, "parameter": parameter}, "Cursor": None}


Found = tuple[list[dict[str, Any]], str | None]  # records, next cursor


@error_shape(platform_body)
async def events(request: web.Request) -> web.Response:
    who = auth.principal(request)
    wanted = events_params.parse(await parsing.json_object(request))
    find = _by_query_id if wanted.query_id else _search
    records, next_cursor = await find(request, who.company_id, wanted)
    proofs = await prover.inclusion(request.app[CH], records) if wanted.proof else {}
    return json_response({"Result": records, "Status": {"code": 200, "message": "OK"}, "Cursor": next_cursor,
                          **proofs})


async def _by_query_id(request: web.Request, company: str, wanted: EventsRequest) -> Found:
    record = await events_store.record_by_query_id(request.app[CH], TenantScope(company),
                                                   wanted.query_id or "", wanted.around)
    if record is None:
        raise NotFound("no record with this QueryId: check the id (QueryIds are case-sensitive)", "QueryId")
    return [record], None


async def _search(request: web.Request, company: str, wanted: EventsRequest) -> Found:
    """A q/Tags page within the company's fair share: a slot of its own (waiting up to
    TRILHA_QUERY_SLOT_WAIT_S, else 429) and a time budget across the search's queries (503 beyond it)."""
    settings = request.app[SETTINGS]
    if wanted.cursor:
        cursor.verify(wanted.cursor, settings.cursor_secret)  # an altered or foreign cursor costs no query
    async with request.app[SEARCH_SLOTS].hold(company, settings.query_slot_wait_s):
        return await _page(Budgeted(request.app[CH], settings.query_search_budget_s), settings.cursor_secret,
                           company, wanted)


async def _page(ch: Any, secret: str, company: str, wanted: EventsRequest) -> Found:
    terms = await events_store.search_terms(ch, wanted.q, wanted.tags)
    if not terms:
        raise BadRequest("q and Tags give nothing to search for", "q")
    day = wanted.day
    scope = cursor.scope(company, CURSOR_KIND, {"terms": terms, "day": day[0].isoformat() if day else None})
    position = _position(cursor.decode(wanted.cursor, scope, secret), len(terms)) if wanted.cursor else None
    page = await events_store.search(ch, TenantScope(company), terms, day, wanted.page_size, position)
    next_cursor = None
    if page.next is not None:
        payload = {**cursor.keyset(Key(page.next.timestamp_ms, page.next.query_id)), "d": page.next.driver,
                   "w": page.next.window}
        next_cursor = cursor.encode(payload, scope, secret)
    return page.records, next_cursor


def _position(payload: dict[str, Any], terms: int) -> events_store.Position:
    millis, query_id = cursor.position(payload)
    driver, window = payload.get("d"), payload.get("w")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (driver, window)) \
            or not 0 <= driver < terms or not 0 <= window < len(events_store.WINDOWS):
        raise BadRequest("Cursor is not valid for this search: leave Cursor out to start again", "Cursor")
    return events_store.Position(millis, query_id, driver, window)


ROUTES: list[web.RouteDef] = [web.post("/events", events), web.post("/log", events)]
