"""Who is calling: the API token of every request, checked before any handler runs.

The token comes as `Authorization: Bearer <token>` or, as the seed platform's clients send it,
`AccessToken: <token>` (their `TokenId` header is accepted and ignored). The verdict for a token
is cached for `CACHE_SECONDS` (5 s), so a burst of calls costs one ClickHouse lookup while a
revocation still takes effect within 5 seconds. Failures are cached too, so a flood of bad tokens
cannot hammer ClickHouse. Handlers get the caller with `principal(request)`; its company goes into
every query. Tokens and secrets never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from query import tokens
from query.errors import Unauthorized

CACHE_SECONDS = 5.0
_CACHE_MAX = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Principal:
    token_id: str
    company_id: str
    user_id: str | None


class _Verdicts:
    """token digest → (Principal or failure message, expiry). Keyed by a digest, not the token."""

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[Principal | str, float]] = {}

    def get(self, key: bytes) -> Principal | str | None:
        hit = self.entries.get(key)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, key: bytes, verdict: Principal | str) -> None:
        if len(self.entries) >= _CACHE_MAX:
            self.entries.clear()
        self.entries[key] = (verdict, time.monotonic() + CACHE_SECONDS)


def public(handler: Handler) -> Handler:
    """Mark a handler that answers without a token (health, metrics, the console page)."""
    handler.trilha_public = True  # type: ignore[attr-defined]
    return handler


def principal(request: web.Request) -> Principal:
    """The authenticated caller of this request (set by the middleware)."""
    return request["principal"]


def _presented(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be `Bearer <token>`")
        return value.strip()
    value = request.headers.get("AccessToken", "").strip()
    if not value:
        raise Unauthorized("missing API token: send `Authorization: Bearer <token>` or an `AccessToken` "
                           "header (create one with `trilha tokens create --company ...`)")
    return value


async def _verdict(ch: Any, token: str) -> Principal | str:
    parsed = tokens.parse(token)
    if parsed is None:
        return "the API token is malformed: tokens look like trl_<id>_<secret>"
    token_id, secret = parsed
    row = await tokens.lookup(ch, token_id)
    if row is None or not hmac.compare_digest(row.secret_hash, tokens.hash_secret(secret)):
        return "the API token is not valid"
    if row.revoked_at is not None:
        return "the API token was revoked"
    return Principal(row.token_id, row.company_id, row.user_id or None)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if getattr(request.match_info.handler, "trilha_public", False) or request.match_info.http_exception:
        return await handler(request)
    token = _presented(request)
    key = hashlib.sha256(token.encode()).digest()
    cache: _Verdicts = request.app["auth_cache"]
    verdict = cache.get(key)
    if verdict is None:
        verdict = await _verdict(request.app["ch"], token)
        cache.put(key, verdict)
    if isinstance(verdict, str):
        raise Unauthorized(verdict)
    request["principal"] = verdict
    return await handler(request)


def setup(app: web.Application) -> None:
    """Give `app` the verdict cache the middleware uses."""
    app["auth_cache"] = _Verdicts()
