"""What the gateway's recorder records and how: `RecorderConfig` and the hooks that fill a record's
`q`, tags, resource and identity from a request.

Apart from the middleware so an application changes what it records (a hook, a header name)
without reading how a request is timed and emitted.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from services.gateway.capture import Network, parse_networks
from services.runtime.logs import SECRET_WORDS
from services.runtime.settings import ConfigError, Settings

IDENTITY_FIELDS = ("company_id", "client_id", "client_name", "client_username", "authorization_id",
                   "authorization_name", "user_id", "event")

Hook = Callable[[web.Request, Any], Any]  # (request, parsed request body) -> value, or an awaitable of it
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_q(request: web.Request, body: Any) -> str | None:
    """The `q` query parameter, or a `q` member of a JSON body (the platform's key{value} syntax)."""
    value = request.query.get("q")
    if value is None and isinstance(body, dict):
        value = body.get("q") or body.get("Q")
    return value if isinstance(value, str) else None


def tags_from_headers(prefix: str = "X-Trilha-Tag-") -> Hook:
    """Tags sent as `X-Trilha-Tag-<name>: <value>` headers, plus a JSON body's `Tags` object."""
    lowered = prefix.lower()

    def tags(request: web.Request, body: Any) -> dict[str, str] | None:
        found = {k[len(prefix):].lower(): v for k, v in request.headers.items()
                 if k.lower().startswith(lowered)}
        if isinstance(body, dict) and isinstance(body.get("Tags") or body.get("tags"), dict):
            found.update({str(k): str(v) for k, v in (body.get("Tags") or body.get("tags")).items()})
        return found or None

    return tags


def route_resource(request: web.Request) -> str | None:
    """The matched route's name, else its path template (`/pessoas/{id}`), never the raw path."""
    route = request.match_info.route
    if route.name:
        return route.name
    resource = route.resource
    return resource.canonical if resource is not None else None


def first_path_segment(request: web.Request) -> str | None:
    """For apps without named routes (the proxy): `/pessoas/123` → `pessoas`."""
    segment = request.path.strip("/").split("/", 1)[0]
    return segment or None


@dataclass
class RecorderConfig:
    """What to record and how; `from_settings` reads the TRILHA_GATEWAY_* variables."""

    company_header: str = "X-Trilha-Company"
    default_company: str | None = None
    query_id_header: str = "X-Query-Id"
    trusted_proxies: tuple[Network, ...] = ()
    company_trusted: tuple[Network, ...] = ()  # peers whose company header is believed
    body_max_bytes: int = 64 * 1024
    redact: tuple[str, ...] = SECRET_WORDS
    server_name: str = field(default_factory=socket.gethostname)
    identity: Hook | None = None  # -> mapping with any of IDENTITY_FIELDS
    q: Hook | None = default_q
    tags: Hook | None = field(default_factory=tags_from_headers)
    resource: Callable[[web.Request], str | None] = route_resource
    prefetch_body: bool = True  # read bodies up to the cap before the handler (a streaming one tees its own)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RecorderConfig:
        values: dict[str, Any] = {
            "company_header": settings.gateway_company_header,
            "query_id_header": settings.gateway_query_id_header,
            "trusted_proxies": _networks(settings.gateway_trusted_proxies, "TRILHA_GATEWAY_TRUSTED_PROXIES"),
            "company_trusted": _networks(settings.gateway_company_trusted, "TRILHA_GATEWAY_COMPANY_TRUSTED"),
            "body_max_bytes": settings.gateway_body_max_bytes,
            "redact": tuple(w.strip() for w in settings.gateway_redact.split(",") if w.strip()),
        }
        if settings.gateway_server_name:
            values["server_name"] = settings.gateway_server_name
        values.update(overrides)
        return cls(**values)


def _networks(spec: str, variable: str) -> tuple[Network, ...]:
    try:
        return parse_networks(spec)
    except ValueError as exc:
        raise ConfigError(f"{variable}: {exc}") from None


async def call_hook(hook: Hook, request: web.Request, body: Any) -> Any:
    """What `hook` answers for this request, awaited if it is a coroutine."""
    value = hook(request, body)
    return await value if inspect.isawaitable(value) else value
