"""How the query service answers when something goes wrong: always JSON, never a traceback.

Handlers raise `BadRequest(message, parameter)` (or another `ApiError`) and the middleware turns it
into a response whose message says what to fix. aiohttp's own HTTP errors (404, 405, 413, ...) are
passed through as JSON with the same shape; ClickHouse being unreachable or a query running out of
time is a 503 saying what to do; anything else unexpected is logged server-side with its traceback
and answered with a generic 500, so internals never reach a caller.

Two shapes exist: the default `{"error": {"message", "parameter"}}`, and the platform's
`{"Result": [], "Status": {"code", "message", "parameter"}, "Cursor": null}` for the Events API,
whose existing clients expect every answer in that form. A handler opts into another shape with
`@error_shape(renderer)`; the middleware finds it on the matched route's handler.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from services.runtime import logs

log = logs.get("query.errors")

_TOO_LONG = {159, 160}  # TIMEOUT_EXCEEDED, TOO_SLOW
DISCONNECTED_STATUS = 499  # nginx's "client closed request"; never reaches the caller, who is gone
# A shard of a sharded ClickHouse not answering (SOCKET_TIMEOUT, NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED,
# NO_REMOTE_SHARD_AVAILABLE): the query fails as a whole (skip_unavailable_shards is off), never partially.
_SHARD_DOWN = {209, 210, 279, 519}
Renderer = Callable[[int, str, str | None], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error a caller can act on: its message is shown to them as it is."""

    status = 400

    def __init_subclass__(cls, status: int | None = None, **kwargs: Any) -> None:
        """`class NotFound(ApiError, status=404)`: the HTTP status goes with the class's name."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class BadRequest(ApiError, status=400):
    """400: a parameter is missing, malformed or not allowed here; `parameter` names it."""


class Unauthorized(ApiError, status=401):
    """401: no token, a malformed one, an unknown one or a revoked one."""


class NotFound(ApiError, status=404):
    """404: nothing the caller may see exists under that name."""


class Unavailable(ApiError, status=503):
    """503: the service cannot answer this now (e.g. a search ran out of its time budget)."""


class TooManyRequests(ApiError, status=429):
    """429: a fair-use limit was reached; `retry_after` (seconds) goes out as `Retry-After`."""

    def __init__(self, message: str, retry_after: float, parameter: str | None = None) -> None:
        super().__init__(message, parameter)
        self.retry_after = max(1, math.ceil(retry_after))


def shown(value: object, limit: int = 60) -> str:
    """`value` as it may be echoed in a message: repr'd and cut, so a huge value is never sent back."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def default_body(status: int, message: str, parameter: str | None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "parameter": parameter}}


def error_shape(renderer: Renderer) -> Callable[[Handler], Handler]:
    """Mark a handler whose errors (401 and 400 included) must use `renderer`'s shape."""

    def mark(handler: Handler) -> Handler:
        handler.trilha_error_shape = renderer  # type: ignore[attr-defined]
        return handler

    return mark


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """orjson-encoded JSON: records carry large `result` documents, and orjson is ~10x json's speed."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def error_response(request: web.Request, status: int, message: str, parameter: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    renderer: Renderer = getattr(request.match_info.handler, "trilha_error_shape", default_body)
    return json_response(renderer(status, message, parameter), status=status, headers=headers)


def _http_message(exc: web.HTTPException, request: web.Request) -> tuple[str, str | None]:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app._client_max_size  # noqa: SLF001 - aiohttp keeps the limit there only
        return (f"request body is larger than the limit of {limit} bytes: send a smaller body", "body")
    if isinstance(exc, web.HTTPNotFound):
        return f"no such path: {request.method} {request.path}", None
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path}: use {allowed}", None
    return (exc.text or exc.reason or "error").removeprefix(f"{exc.status}: "), None


TOOK_TOO_LONG = "the search took too long: narrow it (add QueryDate or more parameters) and try again"


def _unavailable(exc: ClickHouseError) -> str | None:
    """A message for the database failures a caller can do something about (retry or narrow)."""
    if getattr(exc, "code", None) in _TOO_LONG:
        return TOOK_TOO_LONG
    if isinstance(exc, OperationalError):
        return "the database is not answering right now: try again in a few seconds"
    if getattr(exc, "code", None) in _SHARD_DOWN:
        return ("a database shard holding part of these records is not answering, so no answer is given "
                "rather than a partial one: try again in a few seconds")
    return None


def client_gone(request: web.Request) -> bool:
    """True when the caller went away (closed the connection mid-request or mid-download): what
    failed then failed for that reason, nothing is wrong with the service and no answer can reach
    anyone."""
    transport = request.transport
    return transport is None or transport.is_closing()


def disconnected(request: web.Request) -> web.Response:
    """What a request whose caller left is recorded as: logged at info, counted apart, never a 5xx."""
    request["client_disconnected"] = True
    log.info("client disconnected", method=request.method, path=request.path)
    return web.Response(status=DISCONNECTED_STATUS)


def _headers(exc: ApiError) -> dict[str, str] | None:
    if exc.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="trilha"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    if exc.status == 503:
        return {"Retry-After": "5"}
    return None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost JSON error boundary of the query service."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(request, exc.status, exc.message, exc.parameter, _headers(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message, parameter = _http_message(exc, request)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(request, exc.status, message, parameter, headers)
    except Exception as exc:  # noqa: BLE001 - the boundary: log it, never show it
        if client_gone(request):
            return disconnected(request)
        unavailable = _unavailable(exc) if isinstance(exc, ClickHouseError) else None
        if unavailable is not None:
            log.warning("clickhouse unavailable", method=request.method, path=request.path,
                        error=type(exc).__name__, code=getattr(exc, "code", None))
            return error_response(request, 503, unavailable, headers={"Retry-After": "5"})
        log.error("unhandled error", method=request.method, path=request.path, trace=traceback.format_exc())
        return error_response(request, 500, "internal error: the service logged the details; try again "
                                            "or contact the operator")
