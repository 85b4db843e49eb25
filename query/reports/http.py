"""HTTP routes of the reports (issue 5); the reports engineer fills `ROUTES`.

Stub created with the query service's core so `query.app` can assemble its route tables now.
"""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []
