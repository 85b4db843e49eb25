"""What one leaf of the proof tree is: the record exactly as the Events API returns it.

leaf = RFC 8785 canonical JSON of {"company": <company_id>, "record": <the record object>,
"stored_at": <when the record was stored, "YYYY-MM-DDTHH:MM:SS.mmmZ">}, and its hash is
RFC 9162's SHA-256(0x00 || leaf). A verifier recomputes it from the answer it got (the record)
and the proof (`stored_at`), so a row changed behind the service's back no longer hashes to the
leaf the signed tree holds.
"""

from __future__ import annotations

from typing import Any

from services.proofs import canonical, merkle


def leaf_bytes(record: dict[str, Any], stored_at: str) -> bytes:
    return canonical.dumps({"company": record["company_id"], "record": record, "stored_at": stored_at})


def leaf_hash(record: dict[str, Any], stored_at: str) -> bytes:
    return merkle.leaf_hash(leaf_bytes(record, stored_at))
