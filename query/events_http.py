"""HTTP handlers of the Events API (issue 4): POST /events and POST /log."""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []
