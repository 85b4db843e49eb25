"""The web console: one static page that drives the Events API and the API logs report.

It holds no logic of its own beyond presentation: every search goes through the same HTTP
endpoints, with the token the user typed, so the console can never see more than the API lets.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

_PAGE = resources.files("query").joinpath("static", "console.html")
_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:")


async def console(_: web.Request) -> web.Response:
    return web.Response(text=_PAGE.read_text(encoding="utf-8"), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP})


ROUTES: list[web.RouteDef] = [web.get("/", console), web.get("/console", console)]
