"""Message bytes → the line ClickHouse will parse, or the reason the message is rejected.

This is the only per-record Python work on the hot path, so it does two things and no more: a
size check, and one msgspec decode against the contract's types (JSON syntax and contract in a
single pass of C, `request`/`result` located but not built), then the one format check msgspec
cannot express (IP addresses). A valid message is passed on as its ORIGINAL bytes: ClickHouse parses them itself
(JSONEachRow), which is far cheaper than building Python rows. The one exception is a record whose
`request` or `result` is a JSON string: ClickHouse would store the string's content unquoted, so
that record is re-serialised with the field replaced by its JSON text, and what is stored is
always the original JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import orjson

from services.contract import call_record_decoder, describe

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
    """`decoder.decode(value) -> bytes | Rejection` (or call the decoder); built once per worker.

    `decode` is a closure over local names, not a method: it runs once per record, where the
    attribute lookups of a method are a measurable share of the cost.
    """

    def __init__(self, max_record_bytes: int) -> None:
        self.max_record_bytes = max_record_bytes
        self.decode = _decoder(max_record_bytes)

    def __call__(self, value: bytes | None) -> bytes | Rejection:
        return self.decode(value)


def _decoder(limit: int) -> Callable[[bytes | None], bytes | Rejection]:
    parse, check_formats = call_record_decoder()
    invalid, malformed = msgspec.ValidationError, msgspec.DecodeError
    quote = ord('"')

    def decode(value: bytes | None) -> bytes | Rejection:
        if value is None:
            return Rejection(NOT_JSON, "message has no value (tombstone)")
        if len(value) > limit:
            return Rejection(TOO_LARGE, f"record is {len(value)} bytes, the maximum is {limit}"
                                        " (TRILHA_MAX_RECORD_BYTES)")
        try:
            record = parse(value)
        except invalid as exc:
            return _contract_or_syntax(value, exc)
        except malformed as exc:
            return _not_json(exc)
        problem = check_formats(record)
        if problem is not None:
            return Rejection(CONTRACT, problem)
        request, result = record.request, record.result
        if (request and memoryview(request)[0] == quote) or (result and memoryview(result)[0] == quote):
            return quote_string_payloads(orjson.loads(value))
        return value

    return decode


def _contract_or_syntax(value: bytes, exc: msgspec.ValidationError) -> Rejection:
    """msgspec stops at the first contract violation, possibly before a syntax error further on:
    a message only breaks the contract if it is JSON at all (rare, so the second parse is cheap)."""
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as syntax:
        return _not_json(syntax)
    return Rejection(CONTRACT, describe(exc))


def _not_json(exc: Exception) -> Rejection:
    return Rejection(NOT_JSON, f"not valid JSON: {exc}")


def quote_string_payloads(record: dict) -> bytes:
    """The record with a string `request`/`result` replaced by its JSON text, so it is stored quoted."""
    fixed = dict(record)
    for name in ("request", "result"):
        if type(fixed.get(name)) is str:
            fixed[name] = orjson.dumps(fixed[name]).decode()
    return orjson.dumps(fixed)
