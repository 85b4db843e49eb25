"""The web console: a page and its ES modules, stylesheet and the report's field definitions, all
served by the query service itself (no build step, no CDN, nothing fetched from elsewhere).

It holds no logic of its own beyond presentation: every search goes through the same HTTP
endpoints, with the token the user typed, so the console can never see more than the API lets.
Scripts live in files, so the Content-Security-Policy allows no inline script at all; inline
styles stay allowed only because the print view is opened as a blob document, which inherits
this policy and carries its own <style>.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

import schemas

_STATIC = resources.files("query").joinpath("static")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
          ".json": "application/json"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def _files() -> dict[str, str]:
    """Name → content type of every servable file: the only names a request can reach."""
    return {item.name: _TYPES[suffix] for item in _STATIC.iterdir()
            if (suffix := item.name[item.name.rfind("."):]) in _TYPES and item.name != "console.html"}


_SERVED = _files()


async def console(_: web.Request) -> web.Response:
    return web.Response(text=_STATIC.joinpath("console.html").read_text(encoding="utf-8"),
                        content_type="text/html", charset="utf-8", headers=_HEADERS)


async def static(request: web.Request) -> web.Response:
    """GET /console/{name}: one of the console's own files, by exact name."""
    name = request.match_info["name"]
    if name not in _SERVED:
        raise web.HTTPNotFound(text="no such console file")
    return web.Response(text=_STATIC.joinpath(name).read_text(encoding="utf-8"), content_type=_SERVED[name],
                        charset="utf-8", headers=_HEADERS)


async def report_fields(_: web.Request) -> web.Response:
    """The report's columns, labels and words (`schemas/report_api_logs.json`), so the console shows
    the same labels as the CSV and print view without restating them."""
    return web.Response(text=schemas.read_text("report_api_logs.json"), content_type="application/json",
                        charset="utf-8", headers=_HEADERS)


ROUTES: list[web.RouteDef] = [web.get("/", console), web.get("/console", console),
                              web.get("/console/report-fields.json", report_fields),
                              web.get("/console/{name}", static)]
