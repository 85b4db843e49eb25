"""The contract's text bounds hold for records already in Python too (the emitter, the gateway):
payloads nest at most x-maxDepth levels and every string is valid Unicode, with a reason that
says what to fix; message bytes get the same answer from ingest's decoder."""

from __future__ import annotations

from typing import Any

import orjson

from ingest.decode import Decoder, Rejection
from schemas.contract import call_record_validator
from services.stack.records import RecordFactory

validate = call_record_validator()
RECORD = RecordFactory(seed=4).record()


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_payload_at_the_bound_passes_and_one_level_more_is_refused_by_both_paths() -> None:
    for field in ("request", "result"):
        assert validate({**RECORD, field: _deep(64)}) is None
        assert isinstance(Decoder(1 << 20)(orjson.dumps({**RECORD, field: _deep(64)})), bytes)
        reason = validate({**RECORD, field: _deep(65)})
        assert reason is not None and reason.startswith(f"{field} is nested more than 64 levels")
        out = Decoder(1 << 20)(orjson.dumps({**RECORD, field: _deep(65)}))
        assert isinstance(out, Rejection) and out.detail == reason


def test_a_payload_with_an_unpaired_surrogate_or_beyond_any_encoder_is_refused_with_a_reason() -> None:
    assert "surrogates not allowed" in validate({**RECORD, "request": {"nome": "\ud800"}})
    assert "cannot be encoded" in validate({**RECORD, "result": _deep(300)})
    assert validate({**RECORD, "request": {"nome": "Jo\u00e3o \U0001f600"}}) is None
