"""Decoding: a valid record passes as its original bytes; everything else gets a reason a person can act on."""

from __future__ import annotations

import orjson

from ingest.decode import CONTRACT, NOT_JSON, TOO_LARGE, Decoder, Rejection
from services.stack.records import RecordFactory

RECORD = RecordFactory(seed=3).record()


def test_a_valid_record_is_passed_on_as_the_exact_bytes_received() -> None:
    raw = b'{ "query_id" : "q-1", ' + orjson.dumps(RECORD)[1:]  # odd spacing must survive untouched
    assert Decoder(1 << 20)(raw) is raw


def test_not_json_is_rejected_with_the_parser_message() -> None:
    for raw in (b"not json", b'{"query_id": "a"', b"\xff\xfe", b""):
        out = Decoder(1 << 20)(raw)
        assert isinstance(out, Rejection) and out.reason == NOT_JSON and "JSON" in out.detail


def test_a_tombstone_is_rejected() -> None:
    out = Decoder(1 << 20)(None)
    assert isinstance(out, Rejection) and out.reason == NOT_JSON


def test_a_contract_violation_names_the_field() -> None:
    for broken, field in (({**RECORD, "status": "200"}, "status"), ({"company_id": "c"}, "query_id"),
                          ({**RECORD, "ip": "999.1.1.1"}, "ip")):
        out = Decoder(1 << 20)(orjson.dumps(broken))
        assert isinstance(out, Rejection) and out.reason == CONTRACT and field in out.detail
    out = Decoder(1 << 20)(b"[1, 2]")
    assert isinstance(out, Rejection) and out.reason == CONTRACT and "object" in out.detail


def test_a_record_over_the_size_limit_is_rejected_before_parsing() -> None:
    raw = orjson.dumps({**RECORD, "result": "x" * 5000})
    out = Decoder(4096)(raw)
    assert isinstance(out, Rejection) and out.reason == TOO_LARGE
    assert str(len(raw)) in out.detail and "TRILHA_MAX_RECORD_BYTES" in out.detail


def test_string_payloads_are_re_serialised_so_they_are_stored_as_json_text() -> None:
    raw = orjson.dumps({**RECORD, "request": 'say "hi"\n', "result": "ok", "extra": 1})
    out = Decoder(1 << 20)(raw)
    assert isinstance(out, bytes) and out != raw
    line = orjson.loads(out)
    assert orjson.loads(line["request"]) == 'say "hi"\n' and orjson.loads(line["result"]) == "ok"
    assert {k: v for k, v in line.items() if k not in ("request", "result")} == \
        {k: v for k, v in orjson.loads(raw).items() if k not in ("request", "result")}
