"""Hostile records never make the decoder raise: each comes out as the line to store or as a
Rejection whose reason says what to fix; and what it lets through is storable and servable
(valid UTF-8, payloads nested at most the contract's x-maxDepth, a timestamp ClickHouse reads)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import CONTRACT, NOT_JSON, Decoder, Rejection
from schemas import call_record_schema
from tests.ingest.hostile import JSON, REASONS, RECORD, hostile_records, nesting

DECODE = Decoder(1 << 20)
MAX_DEPTH = 64  # the contract's x-maxDepth (test_the_contract_declares_its_bounds)


def _with(**raw: bytes) -> bytes:
    """RECORD with fields given as raw JSON bytes (orjson cannot write invalid UTF-8)."""
    base = {k: v for k, v in RECORD.items() if k not in raw}
    return orjson.dumps(base)[:-1] + b"".join(b',"%s":%s' % (k.encode(), v) for k, v in raw.items()) + b"}"


def test_the_contract_declares_its_bounds() -> None:
    schema = call_record_schema()
    assert [schema["properties"][f].get("x-maxDepth") for f in ("request", "result")] == [MAX_DEPTH, MAX_DEPTH]
    assert "valid Unicode" in schema["description"]


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_invalid_utf8_in_a_string_field_is_a_contract_rejection_not_an_exception() -> None:
    for field in ("client_name", "url", "query_id"):
        out = DECODE(_with(**{field: b'"\xff\xfe"'}))
        assert isinstance(out, Rejection) and out.reason == CONTRACT
        assert out.detail.startswith(f"`$.{field}` is not valid UTF-8 (byte(s) ff")
    for field in ("request", "result"):
        for payload in (b'{"nome":"\xff\xfe"}', b'"\xff\xfe"', b'["\xc3"]'):
            out = DECODE(_with(**{field: payload}))
            assert isinstance(out, Rejection) and out.reason == CONTRACT and out.detail.startswith(field)


def test_a_payload_nested_beyond_the_contract_is_rejected_at_any_depth() -> None:
    for depth in (MAX_DEPTH + 1, 253, 300, 995, 1000, 5000):
        for field in ("request", "result"):
            out = DECODE(_with(**{field: _nested(depth)}))
            assert isinstance(out, Rejection) and out.reason == CONTRACT, (field, depth, out)
            assert str(MAX_DEPTH) in out.detail
    at_limit = _with(request=_nested(MAX_DEPTH), result=b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert DECODE(at_limit) is at_limit


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = _with(request=orjson.dumps({"text": "[" * 500 + "{" * 500}))
    assert DECODE(value) is value


def test_an_unpaired_surrogate_escape_is_rejected_with_where_it_is() -> None:
    out = DECODE(_with(request=b'{"a":"\\ud800"}'))
    assert isinstance(out, Rejection) and out.reason == NOT_JSON and "surrogate" in out.detail
    paired = _with(request=b'{"a":"\\ud83d\\ude00"}')
    assert DECODE(paired) is paired


def test_a_lowercase_t_or_z_timestamp_is_stored_upper_cased_and_the_rest_untouched() -> None:
    for written in ("2026-11-29t10:00:00z", "2026-11-29T10:00:00.123z", "2026-11-29t10:00:00+00:00",
                    "2026-11-29 10:00:00.5-03:00"):
        value = orjson.dumps({**RECORD, "timestamp": written, "request": "texto", "result": {"ok": True}})
        out = DECODE(value)
        assert isinstance(out, bytes), out
        line = orjson.loads(out)
        assert line["timestamp"] == written.upper()
        assert {k: v for k, v in line.items() if k not in ("timestamp", "request")} == \
            {k: v for k, v in orjson.loads(value).items() if k not in ("timestamp", "request")}
        assert orjson.loads(line["request"]) == "texto"


# --- properties -----------------------------------------------------------------------------------

def _check(value: bytes, out: Any) -> None:
    """The decoder's promise for one message."""
    if isinstance(out, Rejection):
        assert out.reason in REASONS and out.detail.strip()
        out.detail.encode()  # the reason travels as a header: it must be encodable text
        return
    assert isinstance(out, bytes)
    out.decode()  # valid UTF-8 throughout
    line = msgspec.json.decode(out, type=dict[str, msgspec.Raw])
    stamp = msgspec.json.decode(line["timestamp"], type=str)
    assert stamp == stamp.upper(), "ClickHouse reads only T and Z"
    for field in ("request", "result"):
        text = bytes(line.get(field, b""))
        if text:
            assert nesting(text) <= MAX_DEPTH


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    _check(value, DECODE(value))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_values_never_raise(value: Any) -> None:
    raw = msgspec.json.encode(value)
    _check(raw, DECODE(raw))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_records())
def test_records_with_hostile_fields_are_stored_or_rejected_never_raise(value: bytes) -> None:
    _check(value, DECODE(value))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1100), st.sampled_from(["request", "result"]))
def test_the_depth_bound_is_exact(depth: int, field: str) -> None:
    out = DECODE(_with(**{field: _nested(depth)}))
    assert isinstance(out, bytes) == (depth <= MAX_DEPTH), (depth, out)

