"""aiohttp middleware that turns every request an application serves into one call record.

`Recorder(emitter, config).install(app)` is all a Python gateway adds. Per request it records
timing, status and error, the caller's address (X-Forwarded-For believed only from trusted
proxies), method, URL, resource (the route's name), server, QueryId, identity, `q`, tags and the
request and result bodies up to a size cap, with secrets redacted. The company is the
configured one (`default_company`, the identity hook's); a company header is believed only from
a direct peer in `company_trusted` (TRILHA_GATEWAY_COMPANY_TRUSTED): from anyone else it would
let a client file its calls under another tenant, so it is ignored, counted and logged once.
Recording never changes the response (except adding the QueryId header when the application sets
none) and never fails the request: a record that cannot be built is logged and skipped.

Handlers that stream (like the recording proxy) put what they saw of the bodies in
`request[REQUEST_BODY]` / `request[RESULT_BODY]` (`capture.Captured`); the middleware uses those.
What is recorded, and the hooks that fill it, are configured in `recording.RecorderConfig`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web

from services.gateway.capture import (
    Captured,
    Redactor,
    body_value,
    client_ip,
    fit_to_contract,
    parse_ip,
)
from services.gateway.emitter import Emitter
from services.gateway.recording import IDENTITY_FIELDS, Handler, RecorderConfig, call_hook
from services.runtime import logs
from services.runtime.metrics import Counter, Registry

log = logs.get("trilha.gateway")

REQUEST_BODY = web.RequestKey("trilha_request_body", Captured)
RESULT_BODY = web.RequestKey("trilha_result_body", Captured)
ERROR_MESSAGE = web.RequestKey("trilha_error_message", str)  # a handler's reason for an error it returns
_QUERY_ID_KEY = web.RequestKey("trilha_query_id", str)
__all__ = ["ERROR_MESSAGE", "REQUEST_BODY", "RESULT_BODY", "Recorder", "RecorderConfig"]


class Recorder:
    """Builds and emits one record per request; `install(app)` wires it into an application."""

    def __init__(self, emitter: Emitter, config: RecorderConfig | None = None) -> None:
        self.emitter = emitter
        self.config = config or RecorderConfig()
        self.redactor = Redactor(self.config.redact)
        self.failures = 0
        self.ignored_company_headers = 0  # a client naming a company it may not: counted, logged once
        self._ignored: Counter | None = None

    def register_metrics(self, registry: Registry) -> None:
        """Export the count of company headers ignored (untrusted peers) as a Prometheus counter."""
        self._ignored = registry.counter("trilha_gateway_company_header_ignored_total",
                                         "company headers ignored because the peer is not a trusted upstream")

    def install(self, app: web.Application) -> web.Application:
        """Add the middleware (outermost) and the hook that puts the QueryId on every response."""
        app.middlewares.insert(0, self.middleware)
        app.on_response_prepare.append(self._add_query_id)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started, clock = datetime.now(UTC), time.perf_counter()
        request[_QUERY_ID_KEY] = str(uuid.uuid4())
        response: web.StreamResponse | None = None
        status, error_message = 500, None
        try:
            await self._read_small_body(request)
            response = await handler(request)
            status = response.status
            self._set_query_id(request, response)
            return response
        except web.HTTPException as exc:
            response, status = exc, exc.status
            error_message = exc.text if status >= 400 else None
            self._set_query_id(request, exc)
            raise
        except asyncio.CancelledError:
            status, error_message = 499, "the client closed the connection before the response"
            raise
        except Exception as exc:
            error_message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            duration_ms = (time.perf_counter() - clock) * 1000
            await self._emit(request, response, started, duration_ms, status, error_message)

    # -- QueryId -----------------------------------------------------------------------------------

    def _set_query_id(self, request: web.Request, response: web.StreamResponse) -> None:
        if not response.prepared and self.config.query_id_header not in response.headers:
            response.headers[self.config.query_id_header] = request[_QUERY_ID_KEY]

    async def _add_query_id(self, request: web.Request, response: web.StreamResponse) -> None:
        query_id = request.get(_QUERY_ID_KEY)
        if query_id and self.config.query_id_header not in response.headers:
            response.headers[self.config.query_id_header] = query_id

    # -- bodies --------------------------------------------------------------------------------------

    async def _read_small_body(self, request: web.Request) -> None:
        """Read a body up to the cap now (aiohttp keeps it for the handler); larger ones are not read."""
        if not self.config.prefetch_body or REQUEST_BODY in request or not request.body_exists:
            return
        size = request.content_length
        captured = Captured(content_type=request.headers.get(hdrs.CONTENT_TYPE, ""),
                            encoding=request.headers.get(hdrs.CONTENT_ENCODING, ""),
                            cap=self.config.body_max_bytes)
        if size is not None and size <= self.config.body_max_bytes:
            captured.feed(await request.read())
        elif size is not None:
            captured.size = size
        request[REQUEST_BODY] = captured

    def _result_body(self, request: web.Request, response: web.StreamResponse | None) -> Captured | None:
        if RESULT_BODY in request:
            return request[RESULT_BODY]
        body = getattr(response, "body", None)
        if response is None or not isinstance(body, bytes | bytearray):
            return None
        captured = Captured(content_type=response.headers.get(hdrs.CONTENT_TYPE, ""),
                            encoding=response.headers.get(hdrs.CONTENT_ENCODING, ""),
                            cap=self.config.body_max_bytes)
        captured.feed(body)
        return captured

    # -- the record ----------------------------------------------------------------------------------

    async def _emit(self, request: web.Request, response: web.StreamResponse | None, started: datetime,
                    duration_ms: float, status: int, error_message: str | None) -> None:
        try:
            record = await self.build(request, response, started, duration_ms, status, error_message)
            await self.emitter.emit(record)
        except Exception as exc:  # noqa: BLE001 - recording must never break the API call
            self.failures += 1
            log.warning("could not record a call", error=repr(exc), path=request.path)

    def company(self, request: web.Request) -> str | None:
        """The configured company, or the one the company header names when a trusted peer sent it."""
        named = request.headers.get(self.config.company_header)
        if not named:
            return self.config.default_company
        peer = parse_ip(request.remote)
        if peer is not None and any(peer in net for net in self.config.company_trusted):
            return named
        self.ignored_company_headers += 1
        if self._ignored is not None:
            self._ignored.inc()
        if self.ignored_company_headers == 1:
            log.warning(f"ignoring {self.config.company_header} from a peer outside TRILHA_GATEWAY_COMPANY_TRUSTED; "
                        "its calls are recorded under the configured company (logged once, counted after)",
                        peer=str(peer))
        return self.config.default_company

    async def build(self, request: web.Request, response: web.StreamResponse | None, started: datetime,
                    duration_ms: float, status: int, error_message: str | None) -> dict[str, Any]:
        """The call record for one finished exchange (public so other glue can reuse it)."""
        cfg, redact = self.config, self.redactor
        request_body = request.get(REQUEST_BODY)
        parsed_request = body_value(request_body, redact) if request_body else None
        query_id = (response.headers.get(cfg.query_id_header) if response is not None else None) \
            or request[_QUERY_ID_KEY]
        url = request.url.with_user(None)
        record: dict[str, Any] = {
            "schema_version": 1,
            "query_id": query_id,
            "company_id": self.company(request),
            "timestamp": started.isoformat(timespec="milliseconds"),
            "duration_ms": round(min(duration_ms, 86_400_000.0), 3),
            "ip": client_ip(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []),
                            cfg.trusted_proxies),
            "server": cfg.server_name,
            "method": request.method,
            "url": str(url.with_query(None)) + (f"?{redact.query(url.raw_query_string)}"
                                                if url.raw_query_string else ""),
            "resource": cfg.resource(request),
            "status": status,
            "error": status >= 400,
            "error_message": redact.text(msg) if (msg := request.get(ERROR_MESSAGE) or error_message)
            else None,
            "request": parsed_request if parsed_request is not None else _query_params(request, redact),
            "result": body_value(result, redact) if (result := self._result_body(request, response))
            else None,
        }
        if cfg.identity is not None:
            identity = await call_hook(cfg.identity, request, parsed_request) or {}
            record.update({k: v for k, v in identity.items() if k in IDENTITY_FIELDS and v is not None})
        if cfg.q is not None:
            record["q"] = await call_hook(cfg.q, request, parsed_request)
        if cfg.tags is not None:
            record["tags"] = await call_hook(cfg.tags, request, parsed_request)
        record = {k: v for k, v in record.items() if v is not None}
        notes = fit_to_contract(record)
        if notes:
            log.info("record adjusted to the contract", query_id=query_id, changes=notes)
        return record


def _query_params(request: web.Request, redact: Redactor) -> dict[str, Any] | None:
    """Without a body, the request's parameters are its query string."""
    if not request.query:
        return None
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values[0] if len(values) == 1 else values
    return redact.value(params)
