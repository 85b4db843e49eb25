"""Signed, opaque paging cursors bound to one company and one search.

A cursor carries where the previous page ended (for keyset paging, the last row's
(timestamp, query_id)). It is signed with HMAC-SHA256 so a caller cannot forge a position, and it
records a fingerprint of its *scope* (the company plus a canonical hash of the search parameters),
so a cursor replayed with different parameters, or by another company's token, is refused with a
400 before any query runs (Google AIP-158). A cursor grants nothing: the caller's token is checked
on every call and every query is filtered by the token's company anyway.

Format: `base64url(json body) "." base64url(hmac)`; the body is `{"v": 1, "s": scope
fingerprint, "p": payload}`. Checking the signature first means a tampered cursor is never parsed
further than base64 and JSON of bounded size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from query.calls.keyset import Key
from query.errors import BadRequest

_VERSION = 1
_MAX_LENGTH = 4096


def scope(company_id: str, kind: str, params: Mapping[str, Any]) -> str:
    """The scope string of a search: company, endpoint kind and a canonical hash of its parameters.

    `params` must hold only what defines the result set (not the page size nor the cursor itself);
    keys are sorted and values JSON-encoded, so equal searches give equal scopes.
    """
    canonical = orjson.dumps(dict(params), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return f"{company_id}\x00{kind}\x00{hashlib.sha256(canonical).hexdigest()}"


def encode(payload: dict[str, Any], scope: str, secret: str) -> str:
    body = _b64(orjson.dumps({"v": _VERSION, "s": _fingerprint(scope, secret), "p": payload}))
    return f"{body}.{_b64(_mac(body, secret))}"


def decode(token: str, scope: str, secret: str, parameter: str = "Cursor") -> dict[str, Any]:
    """The payload of a cursor this service issued for this scope, or BadRequest naming `parameter`."""
    data = verify(token, secret, parameter)
    if not hmac.compare_digest(str(data.get("s", "")), _fingerprint(scope, secret)):
        raise BadRequest(f"{parameter} belongs to a different search: send the same search parameters (and "
                         f"token) as the call that returned it, or leave {parameter} out to start again", parameter)
    return data["p"]


def verify(token: str, secret: str, parameter: str = "Cursor") -> dict[str, Any]:
    """The signed body of a cursor this service issued (any scope); BadRequest if altered or foreign.

    Cheap and query-free: a handler may call it before doing any work for a request.
    """
    if not isinstance(token, str) or len(token) > _MAX_LENGTH or token.count(".") != 1:
        raise _invalid(parameter)
    body, signature = token.split(".")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise _invalid(parameter) from None
    if not hmac.compare_digest(given, _mac(body, secret)):
        raise _invalid(parameter)
    return orjson.loads(_unb64(body))


def keyset(key: Key) -> dict[str, Any]:
    """The payload marking the last row of a page newest-first: its (timestamp in ms, query_id)."""
    return {"t": key.timestamp_ms, "q": key.query_id}


def position(payload: dict[str, Any], parameter: str = "Cursor") -> Key:
    """The key a `keyset` payload marks; signed, but still checked for shape."""
    millis, query_id = payload.get("t"), payload.get("q")
    if not isinstance(millis, int) or isinstance(millis, bool) or not isinstance(query_id, str):
        raise _invalid(parameter)
    return Key(millis, query_id)


def _invalid(parameter: str) -> BadRequest:
    return BadRequest(f"{parameter} is not valid: it was altered or not issued by this service; send the "
                      f"{parameter} value of the previous answer unchanged", parameter)


def _fingerprint(scope: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), b"scope\x00" + scope.encode(), hashlib.sha256).digest()[:16])


def _mac(body: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), b"cursor\x00" + body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
