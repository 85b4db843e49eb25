"""Who is calling: the API token of every request, checked before any handler runs.

The token comes as `Authorization: Bearer <token>` or, as the seed platform's clients send it,
`AccessToken: <token>` (their `TokenId` header is accepted and ignored). A token's row is cached
by its id for `CACHE_SECONDS` (5 s), so a burst of calls costs one ClickHouse lookup while a
revocation still takes effect within 5 seconds, and guessing secrets for a real id costs no
lookup at all. An id that does not exist is refused from `KnownTokenIds` (the negative cache)
without a lookup. Every failed authentication takes from its source address's budget
(`TRILHA_QUERY_AUTH_FAILURE_RATE` / `_BURST`): beyond it, that address gets 429s for tokens not
seen valid lately, before any lookup. Every request of a valid token takes from its own budget
(`TRILHA_QUERY_TOKEN_RATE` / `_BURST`, 429 beyond). Handlers get the caller with
`principal(request)`; its company goes into every query. Tokens and secrets never reach a log line.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from query.access import tokens
from query.access.fair_use import Buckets
from query.access.known_tokens import KnownTokenIds
from query.errors import TooManyRequests, Unauthorized
from query.state import CH, METRICS
from services.runtime.settings import Settings

CACHE_SECONDS = 5.0
GOOD_SECONDS = 3600.0  # a token valid this recently is not a guess: the address budget does not apply
_CACHE_MAX = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Principal:
    token_id: str
    company_id: str
    user_id: str | None


class _Rows:
    """token id → (its newest row or None, expiry). Bounded; cleared wholesale when full."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tokens.TokenRow | None, float]] = {}

    def get(self, token_id: str) -> tuple[tokens.TokenRow | None] | None:
        hit = self.entries.get(token_id)
        if hit is None or hit[1] < time.monotonic():
            return None
        return (hit[0],)

    def put(self, token_id: str, row: tokens.TokenRow | None) -> None:
        if len(self.entries) >= _CACHE_MAX:
            self.entries.clear()
        self.entries[token_id] = (row, time.monotonic() + CACHE_SECONDS)


@dataclass
class Gate:
    """The middleware's state: row cache, negative cache, recently valid ids and the budgets."""

    rows: _Rows
    known: KnownTokenIds
    good: dict[str, float]
    failures: Buckets
    per_token: Buckets


AUTH_GATE = web.AppKey("auth_gate", Gate)


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


async def _row(request: web.Request, gate: Gate, token_id: str) -> tokens.TokenRow | None:
    """The token's newest row: cached, or refused as unknown without a lookup, or looked up."""
    cached = gate.rows.get(token_id)
    if cached is not None:
        return cached[0]
    ch, refreshes = request.app[CH], gate.known.refreshes
    exists = await gate.known.exists(ch, token_id)
    row = await tokens.lookup(ch, token_id) if exists else None
    lookups = request.app[METRICS].counter("trilha_query_token_lookups_total", "")
    lookups.inc(gate.known.refreshes - refreshes, kind="ids")
    lookups.inc(1 if exists else 0, kind="row")
    gate.rows.put(token_id, row)
    return row


async def _verdict(request: web.Request, gate: Gate, token: str) -> Principal | str:
    parsed = tokens.parse(token)
    if parsed is None:
        return "the API token is malformed: tokens look like trl_<id>_<secret>"
    token_id, secret = parsed
    row = await _row(request, gate, token_id)
    if row is None or not hmac.compare_digest(row.secret_hash, tokens.hash_secret(secret)):
        return "the API token is not valid"
    if row.revoked_at is not None:
        return "the API token was revoked"
    return Principal(row.token_id, row.company_id, row.user_id or None)


def _guess_budget(request: web.Request, gate: Gate, token: str) -> bool:
    """Charge this address one failure up front, unless the token is known good (then False);
    429 before any lookup when the address has none left. The charge is given back on success, so
    only failures cost, and a burst of concurrent guesses is stopped as well as a sequence."""
    parsed = tokens.parse(token)
    seen = gate.good.get(parsed[0]) if parsed is not None else None
    if seen is not None and seen > time.monotonic() - GOOD_SECONDS:
        return False
    wait = gate.failures.take(request.remote or "")
    if wait:
        raise TooManyRequests("too many failed authentications from this address: check the token, then "
                              "try again later", retry_after=wait)
    return True


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if getattr(request.match_info.handler, "trilha_public", False) or request.match_info.http_exception:
        return await handler(request)
    gate: Gate = request.app[AUTH_GATE]
    token = _presented(request)
    charged = _guess_budget(request, gate, token)
    verdict = await _verdict(request, gate, token)
    if isinstance(verdict, str):
        raise Unauthorized(verdict)
    if charged:
        gate.failures.give_back(request.remote or "")
    gate.good[verdict.token_id] = time.monotonic()
    if len(gate.good) > _CACHE_MAX:
        gate.good.clear()
    wait = gate.per_token.take(verdict.token_id)
    if wait:
        raise TooManyRequests(f"this token made more than {gate.per_token.rate:g} requests per second: slow "
                              "down and try again", retry_after=wait)
    request["principal"] = verdict
    return await handler(request)


def setup(app: web.Application, settings: Settings) -> None:
    """Give `app` the caches and budgets the middleware uses."""
    app[AUTH_GATE] = Gate(_Rows(), KnownTokenIds(settings.query_unknown_token_s), {},
                            Buckets(settings.query_auth_failure_rate, settings.query_auth_failure_burst),
                            Buckets(settings.query_token_rate, settings.query_token_burst))
