"""Message bytes → the line ClickHouse will parse, or the reason the message is rejected.

This is the only per-record Python work on the hot path, so it does three things and no more:
a size check, `orjson.loads` (is it JSON at all?) and the contract validator. A valid message is
passed on as its ORIGINAL bytes: ClickHouse parses them itself (JSONEachRow), which is far cheaper
than building Python rows. The one exception is a record whose `request` or `result` is a JSON
string: ClickHouse would store the string's content unquoted, so that record is re-serialised with
the field replaced by its JSON text, and what is stored is always the original JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from services.contract import Validator, call_record_validator

TOO_LARGE = "too_large"
NOT_JSON = "not_json"
CONTRACT = "contract"
REJECTED_BY_CLICKHOUSE = "clickhouse"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be stored: a stable `reason` code (metrics, headers) and a human `detail`."""

    reason: str
    detail: str


class Decoder:
    """Callable `decoder(value) -> bytes | Rejection`; built once per worker (the validator is compiled)."""

    def __init__(self, max_record_bytes: int, validator: Validator | None = None) -> None:
        self.max_record_bytes = max_record_bytes
        self.validate = validator or call_record_validator()

    def __call__(self, value: bytes | None) -> bytes | Rejection:
        if value is None:
            return Rejection(NOT_JSON, "message has no value (tombstone)")
        if len(value) > self.max_record_bytes:
            return Rejection(TOO_LARGE, f"record is {len(value)} bytes, the maximum is {self.max_record_bytes}"
                                        " (TRILHA_MAX_RECORD_BYTES)")
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return Rejection(NOT_JSON, f"not valid JSON: {exc}")
        problem = self.validate(record)
        if problem is not None:
            return Rejection(CONTRACT, problem)
        if type(record.get("request")) is str or type(record.get("result")) is str:
            return quote_string_payloads(record)
        return value


def quote_string_payloads(record: dict) -> bytes:
    """The record with a string `request`/`result` replaced by its JSON text, so it is stored quoted."""
    fixed = dict(record)
    for name in ("request", "result"):
        if type(fixed.get(name)) is str:
            fixed[name] = orjson.dumps(fixed[name]).decode()
    return orjson.dumps(fixed)
