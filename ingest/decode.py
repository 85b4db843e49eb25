"""Message bytes → the line ClickHouse will parse, or the reason the message is rejected.

This is the only per-record Python work on the hot path, so it does two things and no more: a
size check, and one msgspec decode against the contract's types (JSON syntax and contract in a
single pass of C, `request`/`result` located but not built), then the one format check msgspec
cannot express (IP addresses, the timestamp, the depth and Unicode of `request`/`result`). A valid
message is passed on as its ORIGINAL bytes: ClickHouse parses them itself (JSONEachRow), which is far
cheaper than building Python rows. The exceptions are rewritten field by field, every other field
kept as the exact text it was: a `request` or `result` that is a JSON string (ClickHouse would store
the string's content unquoted, so it is replaced by its JSON text) and a timestamp written with a
lowercase `t`/`z` (ClickHouse refuses it; it is upper-cased).

The text bounds cost a pass over the message (`translate` for the openers, a UTF-8 decode) and the
timestamp is read from its own text: measured on the benchmark's 1.1 KB records, "decoder alone"
went from ~3.8 to ~5.7 µs a record (process CPU, best of 5, on a loaded 2-core machine).

A record can never stop ingest: whatever one message makes the decoder raise (msgspec's
UnicodeDecodeError for invalid UTF-8 in a typed string, a RecursionError, anything else) is that
message's Rejection, never an exception out of `decode`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import orjson

from schemas.contract import call_record_decoder, describe
from schemas.json_text import message_not_utf8

TOO_LARGE = "too_large"
NOT_JSON = "not_json"
CONTRACT = "contract"
REJECTED_BY_CLICKHOUSE = "clickhouse"
REASONS = (TOO_LARGE, NOT_JSON, CONTRACT, REJECTED_BY_CLICKHOUSE)


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
    parse, check = call_record_decoder()
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
            problem = check(record, value)
            if problem is not None:
                return Rejection(CONTRACT, problem)
            request, result, stamp = record.request, record.result, bytes(record.timestamp)
            if (request and memoryview(request)[0] == quote) or (result and memoryview(result)[0] == quote) \
                    or (not stamp.isupper() and needs_upper(stamp)):
                return rewrite(value)
            return value
        except invalid as exc:
            return _contract_or_syntax(value, exc)
        except malformed as exc:
            return _malformed(value, exc)
        except Exception as exc:  # noqa: BLE001 - whatever one record does, it is that record's dead letter
            return _unexpected(value, exc)

    return decode


def needs_upper(stamp: bytes) -> bool:
    """ClickHouse reads `T` and `Z` only; RFC 3339 (and the contract) allow `t` and `z` too."""
    return b"t" in stamp or b"z" in stamp or b"\\" in stamp


def rewrite(value: bytes) -> bytes:
    """The record as ClickHouse must read it: a string `request`/`result` replaced by its JSON text
    (ClickHouse would store the string's content unquoted) and the timestamp in upper case. Every
    other field stays the exact text it was (`Raw`); only a repeated key collapses to its last."""
    fields = _FIELDS(value)
    for name in ("request", "result"):
        raw = fields.get(name)
        if raw is not None and bytes(raw)[:1] == b'"':
            fields[name] = msgspec.Raw(_ENCODE(bytes(raw).decode()))
    fields["timestamp"] = msgspec.Raw(_ENCODE(_STRING(fields["timestamp"]).upper()))
    return _ENCODE(fields)


_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_STRING = msgspec.json.Decoder(str).decode
_ENCODE = msgspec.json.Encoder().encode


def _unexpected(value: bytes, exc: Exception) -> Rejection:
    """msgspec reads a typed string as UTF-8 and raises UnicodeDecodeError; a nesting deeper than the
    interpreter's recursion limit raises RecursionError; anything else is reported as it is."""
    if isinstance(exc, UnicodeDecodeError):
        problem = message_not_utf8(value)
        if problem is not None:
            return Rejection(CONTRACT, problem)
    if isinstance(exc, RecursionError):
        return Rejection(CONTRACT, "record is nested too deep to read: request and result may nest at most"
                                   " 64 arrays/objects (x-maxDepth)")
    return Rejection(CONTRACT, f"record cannot be read: {type(exc).__name__}: {exc}"[:2000])


def _contract_or_syntax(value: bytes, exc: msgspec.ValidationError) -> Rejection:
    """msgspec stops at the first contract violation, possibly before a syntax error further on:
    a message only breaks the contract if it is JSON at all (rare, so the second parse is cheap)."""
    return _syntax_error(value) or Rejection(CONTRACT, describe(exc))


def _malformed(value: bytes, exc: msgspec.DecodeError) -> Rejection:
    """msgspec's syntax messages can be terse ("Input data was truncated" for an unpaired surrogate
    escape); orjson's name the problem and its line and column, so they are preferred."""
    return _syntax_error(value) or _not_json(exc)


def _syntax_error(value: bytes) -> Rejection | None:
    """orjson's account of why `value` is not JSON; None if it reads it (or only nests too deep for it)."""
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as syntax:
        if "recursion limit" not in str(syntax):
            return _not_json(syntax)
    return None


def _not_json(exc: Exception) -> Rejection:
    return Rejection(NOT_JSON, f"not valid JSON: {exc}")

