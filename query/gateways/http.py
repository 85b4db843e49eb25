"""HTTP routes of completeness per gateway: `GET /gateways/completeness` (every gateway of the
caller's company) and `GET /gateways/{gateway_id}/completeness` (one; 404 when the company has no
numbered record from it). The company comes from the token, never from the request.
"""

from __future__ import annotations

import re

from aiohttp import web

from query.access.auth import principal
from query.access.tenant import TenantScope
from query.errors import BadRequest, NotFound, json_response, shown
from query.gateways.store import completeness
from query.parsing import integer, reject_unknown
from query.reports.filters import single_values
from query.state import CH
from schemas import call_record_schema

DEFAULT_GAPS, MAX_GAPS = 100, 1000
_ID = call_record_schema()["properties"]["gateway_id"]
_ID_PATTERN = re.compile(_ID["pattern"])


def _max_gaps(request: web.Request) -> int:
    params = single_values(request.query)
    reject_unknown(params, ("max_gaps",))
    return integer(params, "max_gaps", 1, MAX_GAPS, DEFAULT_GAPS)


async def all_gateways(request: web.Request) -> web.Response:
    """Every gateway that numbered a record of the caller's company, by id."""
    max_gaps = _max_gaps(request)
    found = await completeness(request.app[CH], TenantScope(principal(request).company_id), max_gaps)
    return json_response({"gateways": [g.describe() for g in found]})


async def one_gateway(request: web.Request) -> web.Response:
    """One gateway's watermark and gaps."""
    gateway_id = request.match_info["gateway_id"]
    if len(gateway_id) > _ID["maxLength"] or not _ID_PATTERN.search(gateway_id):
        raise BadRequest(f"gateway id {shown(gateway_id)} is not one: letters, digits and . _ : @ -, "
                         f"at most {_ID['maxLength']}", "gateway_id")
    max_gaps = _max_gaps(request)
    found = await completeness(request.app[CH], TenantScope(principal(request).company_id), max_gaps, gateway_id)
    if not found:
        raise NotFound(f"no numbered record of gateway {shown(gateway_id)} is stored for your company",
                       "gateway_id")
    return json_response(found[0].describe())


ROUTES: list[web.RouteDef] = [web.get("/gateways/completeness", all_gateways),
                              web.get("/gateways/{gateway_id}/completeness", one_gateway)]
