"""Signed cursors: a cursor works only unchanged, for the search and company it was issued for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from query.calls import cursor
from query.calls.keyset import Key, instant, millis
from query.errors import BadRequest

SECRET = "unit-test-secret"
SCOPE = cursor.scope("company-a", "events", {"terms": ["q:doc{1}"], "day": None})


def test_round_trip_keeps_the_position() -> None:
    moment = datetime(2026, 11, 21, 12, 30, 15, 123000, tzinfo=UTC)
    key = Key(millis(moment), "qid-9")
    token = cursor.encode(cursor.keyset(key), SCOPE, SECRET)
    assert cursor.position(cursor.decode(token, SCOPE, SECRET)) == key
    assert instant(key.timestamp_ms) == "2026-11-21T12:30:15.123Z"


def test_scope_is_canonical_in_key_order() -> None:
    assert cursor.scope("c", "k", {"a": 1, "b": [2]}) == cursor.scope("c", "k", {"b": [2], "a": 1})


@pytest.mark.parametrize("position", [0, 5, 20, -3])
def test_any_altered_character_is_refused(position: int) -> None:
    token = cursor.encode({"t": 1, "q": "x"}, SCOPE, SECRET)
    altered = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1:]
    with pytest.raises(BadRequest) as caught:
        cursor.decode(altered, SCOPE, SECRET)
    assert caught.value.parameter == "Cursor"
    assert "altered" in caught.value.message


def test_a_forged_payload_with_the_old_signature_is_refused() -> None:
    token = cursor.encode({"t": 1, "q": "x"}, SCOPE, SECRET)
    body, signature = token.split(".")
    forged = cursor.encode({"t": 999, "q": "x"}, SCOPE, "attacker-secret").split(".")[0]
    with pytest.raises(BadRequest):
        cursor.decode(f"{forged}.{signature}", SCOPE, SECRET)


def test_another_secret_is_refused() -> None:
    token = cursor.encode({"t": 1, "q": "x"}, SCOPE, "another-service")
    with pytest.raises(BadRequest, match="altered or not issued"):
        cursor.decode(token, SCOPE, SECRET)


@pytest.mark.parametrize("other", [
    cursor.scope("company-b", "events", {"terms": ["q:doc{1}"], "day": None}),
    cursor.scope("company-a", "events", {"terms": ["q:doc{2}"], "day": None}),
    cursor.scope("company-a", "events", {"terms": ["q:doc{1}"], "day": "2026-11-21"}),
    cursor.scope("company-a", "reports", {"terms": ["q:doc{1}"], "day": None}),
])
def test_another_scope_is_a_different_search(other: str) -> None:
    token = cursor.encode({"t": 1, "q": "x"}, SCOPE, SECRET)
    with pytest.raises(BadRequest, match="different search") as caught:
        cursor.decode(token, other, SECRET, parameter="cursor")
    assert caught.value.parameter == "cursor"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "!!!.???", "x" * 5000, "e30.e30"])
def test_garbage_is_refused_not_crashed(garbage: str) -> None:
    with pytest.raises(BadRequest):
        cursor.decode(garbage, SCOPE, SECRET)


def test_keyset_payload_shape_is_checked() -> None:
    with pytest.raises(BadRequest):
        cursor.position({"t": "1", "q": "x"})
    with pytest.raises(BadRequest):
        cursor.position({"t": True, "q": "x"})


def test_verify_checks_the_signature_before_any_scope_is_known() -> None:
    token = cursor.encode({"t": 1, "q": "x"}, SCOPE, SECRET)
    assert cursor.verify(token, SECRET)["p"] == {"t": 1, "q": "x"}
    with pytest.raises(BadRequest, match="altered"):
        cursor.verify(token[:-1] + ("A" if token[-1] != "A" else "B"), SECRET)
