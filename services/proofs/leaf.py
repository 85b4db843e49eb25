"""What one leaf of the proof tree is: the record exactly as the Events API returns it.

leaf = RFC 8785 canonical JSON of {"company": <company_id>, "record": <the record object>,
"stored_at": <when the record was stored, "YYYY-MM-DDTHH:MM:SS.mmmZ">}, and its hash is
RFC 9162's SHA-256(0x00 || leaf). A verifier recomputes it from the answer it got (the record)
and the proof (`stored_at`), so a row changed behind the service's back no longer hashes to the
leaf the signed tree holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from query.calls import keyset
from services.proofs import canonical, merkle

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant(millis: int) -> str:
    """Milliseconds since the epoch as the proof format writes instants (UTC, milliseconds, `Z`),
    as every answer writes a record's time (`keyset.instant`), with the second's text cached: a
    checkpoint round writes two for every leaf."""
    seconds, ms = divmod(millis, 1000)
    try:
        return f"{_second(seconds)}.{ms:03d}Z"
    except OverflowError:  # beyond Python's datetime: keyset.instant's answer, whatever it is
        return keyset.instant(millis)


@lru_cache(maxsize=65_536)
def _second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds").removesuffix("+00:00")


def leaf_bytes(record: dict[str, Any], stored_at: str) -> bytes:
    return canonical.dumps({"company": record["company_id"], "record": record, "stored_at": stored_at})


def leaf_hash(record: dict[str, Any], stored_at: str) -> bytes:
    return merkle.leaf_hash(leaf_bytes(record, stored_at))
