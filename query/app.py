"""`trilha query`: the query service (Events API, reports, console) as one aiohttp application.

`create_app(settings)` assembles the route tables of each feature module (`query.events.http`,
`query.reports.http`, `query.console`) behind the same middlewares: request metrics, JSON errors
and token authentication. One ClickHouse client (no session, safe to share between concurrent
requests) lives in `app[CH]` for the application's lifetime; `/livez`, `/readyz`, `/healthz`
and `/metrics` answer without a token.

Health is honest under load: `/livez` says the process answers (no ClickHouse involved), and
`/readyz` (also at `/healthz`) asks ClickHouse's `/ping` over a connection of its own, so it
never queues behind the service's heavy queries and a busy service is not reported down.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from aiohttp import ClientSession, ClientTimeout, web

import schemas
from query import console, errors, openapi_doc
from query.access import auth
from query.access.fair_use import CompanySlots
from query.events import http as events_http
from query.gateways import http as gateways_http
from query.proofs import http as proofs_http
from query.reports import downloads, egress, runs, schedule_edit
from query.reports import http as reports_http
from query.state import CH, EXPORT_SLOTS, METRICS, PING, SEARCH_SLOTS, SETTINGS
from services.runtime import clients, logs, metrics, netcheck
from services.runtime.netcheck import ensure_port_free
from services.runtime.settings import ConfigError, Settings

MAX_BODY_BYTES = 1024 * 1024
_CONNECT_ATTEMPTS = 30
_PING_TIMEOUT_S = 2.0

log = logs.get("query.app")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="overrides TRILHA_QUERY_HOST")
    parser.add_argument("--port", type=int, help="overrides TRILHA_QUERY_PORT")


def create_app(settings: Settings) -> web.Application:
    """The application; ClickHouse is connected on start-up and closed on clean-up."""
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[_metrics_middleware, errors.middleware, auth.middleware])
    app[SETTINGS] = _with_cursor_secret(settings)
    egress.policy(settings)  # a wrong TRILHA_WEBHOOK_ALLOW stops start-up with one line, not a later 500
    app[CH] = None
    app[METRICS] = registry = metrics.Registry()
    registry.counter("trilha_query_requests_total", "HTTP requests answered, by route, method and status")
    registry.histogram("trilha_query_request_seconds", "time to answer an HTTP request, by route")
    registry.counter("trilha_query_token_lookups_total", "ClickHouse queries spent on authentication: a token's "
                     "row, or a refresh of the set of token ids")
    auth.setup(app, app[SETTINGS])
    app[SEARCH_SLOTS] = CompanySlots(settings.query_searches_per_company, "searches or report queries")
    app[EXPORT_SLOTS] = CompanySlots(settings.query_exports_per_company, "CSV exports")
    app.cleanup_ctx.append(_clickhouse)
    app.add_routes([web.get("/healthz", readyz), web.get("/readyz", readyz), web.get("/livez", livez),
                    web.get("/metrics", auth.public(metrics.handler(registry))),
                    web.get("/openapi.yaml", openapi), web.get(f"/{openapi_doc.CONTRACT_FILE}", contract)])
    app.add_routes(_public(console.ROUTES))
    app.add_routes(events_http.ROUTES + proofs_http.ROUTES)
    app.add_routes(reports_http.ROUTES)
    app.add_routes(gateways_http.ROUTES)
    app.add_routes(runs.ROUTES + downloads.ROUTES + schedule_edit.ROUTES)  # the console's schedule screens
    return app


def _public(routes: list[web.RouteDef]) -> list[web.RouteDef]:
    return [web.RouteDef(r.method, r.path, auth.public(r.handler), r.kwargs) for r in routes]


def _with_cursor_secret(settings: Settings) -> Settings:
    """`trilha up` passes one key per data dir; a standalone process makes one up and says so."""
    if settings.cursor_secret:
        return settings
    log.warning("TRILHA_CURSOR_SECRET is empty: using a random key, so paging cursors stop working when "
                "this process restarts and are not accepted by other query processes")
    return replace(settings, cursor_secret=secrets.token_urlsafe(32))


async def _clickhouse(app: web.Application) -> AsyncIterator[None]:
    """Connect once at start-up (retrying while ClickHouse finishes starting), close at shutdown."""
    settings: Settings = app[SETTINGS]
    for attempt in range(_CONNECT_ATTEMPTS):
        try:
            app[CH] = await clients.clickhouse(settings)
            break
        except Exception as exc:  # noqa: BLE001 - any connection failure is retried, then reported
            if attempt == _CONNECT_ATTEMPTS - 1:
                raise ConfigError(f"cannot connect to ClickHouse at {settings.clickhouse_url}: {exc}") from None
            await asyncio.sleep(1.0)
    app[PING] = ClientSession(timeout=ClientTimeout(total=_PING_TIMEOUT_S))  # its own connections
    yield
    await app[PING].close()
    await app[CH].close()


@auth.public
async def livez(_: web.Request) -> web.Response:
    """200 whenever the process answers at all: whether to restart it, not whether to send it work."""
    return errors.json_response({"status": "ok"})


@auth.public
async def readyz(request: web.Request) -> web.Response:
    """200 when ClickHouse answers its `/ping`, 503 when it does not; never needs a token."""
    url = request.app[SETTINGS].clickhouse_url.rstrip("/") + "/ping"
    try:
        async with request.app[PING].get(url) as answer:
            ok = answer.status == 200
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        log.warning("health check: clickhouse unreachable", error=type(exc).__name__)
        ok = False
    if ok:
        return errors.json_response({"status": "ok", "clickhouse": "ok"})
    return errors.json_response({"status": "degraded", "clickhouse": "unreachable"}, status=503)


@auth.public
async def openapi(_: web.Request) -> web.Response:
    """The OpenAPI document of this service (`schemas/openapi.yaml`, made whole), for clients and humans."""
    return web.Response(text=openapi_doc.served(), content_type="application/yaml", charset="utf-8")


@auth.public
async def contract(_: web.Request) -> web.Response:
    """The call-record contract the OpenAPI document describes records by, as it is kept."""
    return web.Response(text=schemas.read_text(openapi_doc.CONTRACT_FILE), content_type="application/json",
                        charset="utf-8")


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    registry: metrics.Registry = request.app[METRICS]
    status = "client_disconnected" if request.get("client_disconnected") else response.status
    registry.counter("trilha_query_requests_total", "").inc(route=route, method=request.method, status=status)
    registry.histogram("trilha_query_request_seconds", "").observe(time.perf_counter() - started, route=route)
    return response


def command(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; bad configuration is one ConfigError line."""
    settings = replace(settings, query_host=args.host or settings.query_host,
                       query_port=args.port or settings.query_port)
    logs.configure(settings.log_level, settings.log_format, component="query")
    ensure_port_free(settings.query_host, settings.query_port, "the query service (TRILHA_QUERY_PORT)")
    asyncio.run(netcheck.require_clickhouse(settings))
    log.info("query service starting", host=settings.query_host, port=settings.query_port)
    try:
        web.run_app(create_app(settings), host=settings.query_host, port=settings.query_port,
                    access_log=None, print=None, shutdown_timeout=10)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.query_host}:{settings.query_port} "
                          f"(TRILHA_QUERY_PORT): {exc.strerror or exc}") from None
    return 0
