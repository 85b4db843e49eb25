"""Webhook signatures: a receiver proves a report came from this Trilha and was not altered.

Each schedule has its own secret (`whsec_…`), shown once in the answer that created it. Every
delivery carries `X-Trilha-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, f"{t}." + body). A receiver recomputes it over the raw body, compares in
constant time, and refuses a `t` far from its clock (a replayed old delivery); the
`Idempotency-Key` header then tells a retry from a new report. The secret is stored (it is needed
to sign) but never logged nor returned by GET.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

HEADER = "X-Trilha-Signature"
PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes | Path, timestamp: int | None = None) -> str:
    """The header value for `body` (bytes, or a file read in chunks) signed at `timestamp` (now)."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{moment}.".encode(), hashlib.sha256)
    if isinstance(body, Path):
        with body.open("rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                mac.update(chunk)
    else:
        mac.update(body)
    return f"t={moment},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does (and the README shows): recompute, compare in constant time, check freshness."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        moment = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, body, moment).split("v1=", 1)[1]
    fresh = abs((time.time() if now is None else now) - moment) <= tolerance_s
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))
