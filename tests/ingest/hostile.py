"""Hypothesis strategies for hostile Kafka messages: arbitrary JSON, invalid UTF-8, unpaired
surrogate escapes, nesting up to 1,200 levels, numbers no double holds, timestamps at the edges of
what RFC 3339 and ClickHouse read, and records whose fields are any of those."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from hypothesis import strategies as st

from ingest.decode import CONTRACT, NOT_JSON, REJECTED_BY_CLICKHOUSE, TOO_LARGE
from schemas import call_record_schema
from services.stack.records import RecordFactory

RECORD = RecordFactory(seed=3).record()
REASONS = {CONTRACT, NOT_JSON, REJECTED_BY_CLICKHOUSE, TOO_LARGE}
FIELDS = list(call_record_schema()["properties"])

JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)
HOSTILE_TEXT = st.one_of(
    st.binary(max_size=40).map(lambda b: b'"' + b.replace(b"\\", b"").replace(b'"', b"") + b'"'),
    st.sampled_from([b'"\\ud800"', b'"\\udc00x"', b'"\\ud83d\\ude00"', b'"\xed\xa0\x80"', b'"\xc0\xaf"']),
)
DEEP = st.builds(lambda n, arrays: b"[" * n + b"]" * n if arrays else b'{"k":' * n + b"0" + b"}" * n,
                 st.integers(1, 1200), st.booleans())
NUMBERS = st.sampled_from([b"1e999999", b"-1e400", b"123456789012345678901234567890", b"0.1e-99999", b"-0"])
TIMESTAMPS = st.sampled_from(["2026-11-29t10:00:00z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
                              "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                              "2026-02-30T10:00:00Z", "2026-11-29T10:00:00+2359", "2026-11-29T10:00:00",
                              "2026-11-29T10:00:00.1234567891234z", "yesterday"]).map(orjson.dumps)
RAW_VALUE = st.one_of(JSON.map(msgspec.json.encode), HOSTILE_TEXT, DEEP, NUMBERS, TIMESTAMPS)


@st.composite
def hostile_records(draw: st.DrawFn, record: dict[str, Any] = RECORD, keep: tuple[str, ...] = ()) -> bytes:
    """`record` with some fields (contract or unknown, except `keep`) replaced by hostile raw JSON values."""
    base = dict(record)
    raw: dict[str, bytes] = {}
    names = [f for f in [*FIELDS, "extra", "\u00e9"] if f not in keep]
    for field in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        base.pop(field, None)
        raw[field] = draw(RAW_VALUE)
    if draw(st.booleans()):
        base["timestamp"] = draw(st.sampled_from(["2026-11-29t10:00:00z", "2026-11-29T10:00:00.000+00:00"]))
    body = orjson.dumps(base)[:-1]
    return body + b"".join(b',%s:%s' % (orjson.dumps(k), v) for k, v in raw.items()) + b"}"


def nesting(text: bytes) -> int:
    """How deep a JSON text nests arrays/objects (a plain scan: the test's own oracle)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == 0x5C, char != 0x22)
        elif char == 0x22:
            in_string = True
        elif char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest
