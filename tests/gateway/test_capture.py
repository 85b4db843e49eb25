"""The recording rules on their own: whose address is believed, what is hidden, how bodies are kept."""

from __future__ import annotations

import gzip
import zlib

from schemas.contract import call_record_validator
from services.gateway.capture import (
    REDACTED,
    Captured,
    Redactor,
    body_value,
    client_ip,
    fit_to_contract,
    parse_networks,
)
from services.stack.records import RecordFactory

TRUSTED = parse_networks("10.0.0.0/8, 127.0.0.1, fd00::/8")
REDACT = Redactor(["authorization", "password", "senha", "token", "secret", "apikey", "cookie"])


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    # A client talking to us directly cannot choose its address with the header.
    assert client_ip("203.0.113.5", ["1.2.3.4"], TRUSTED) == "203.0.113.5"
    # Behind our proxies: the nearest hop that is not one of them.
    assert client_ip("10.0.0.2", ["1.2.3.4, 198.51.100.7, 10.0.0.9"], TRUSTED) == "198.51.100.7"
    # Several headers are one list; a spoofed first entry is never reached.
    assert client_ip("127.0.0.1", ["6.6.6.6", "198.51.100.7"], TRUSTED) == "198.51.100.7"
    # Only proxies all the way: the farthest one is the best we know.
    assert client_ip("10.0.0.2", ["10.1.1.1"], TRUSTED) == "10.1.1.1"
    # Garbage stops the walk at the last address we could read; ports, brackets and v4-in-v6 are understood.
    assert client_ip("10.0.0.2", ["not-an-ip, 10.0.0.3"], TRUSTED) == "10.0.0.3"
    assert client_ip("10.0.0.2", ["[2001:db8::1]:443, 198.51.100.7:5555"], TRUSTED) == "198.51.100.7"
    assert client_ip("::ffff:203.0.113.9", [], TRUSTED) == "203.0.113.9"
    assert client_ip("fd00::1", ["2001:db8::7"], TRUSTED) == "2001:db8::7"
    assert client_ip(None, ["1.2.3.4"], TRUSTED) is None


def test_secrets_are_redacted_wherever_they_appear() -> None:
    body = {"login": "maria", "Password": "x", "nested": [{"access_token": "t", "TokenId": "i"}],
            "senha_atual": "y", "note": "Authorization: Bearer abc.def-ghi", "api-key": "k"}
    assert REDACT.value(body) == {"login": "maria", "Password": REDACTED,
                                  "nested": [{"access_token": REDACTED, "TokenId": REDACTED}],
                                  "senha_atual": REDACTED, "note": f"Authorization: Bearer {REDACTED}",
                                  "api-key": REDACTED}
    cut = '{"user": "a", "client_secret": "s3", "n": 1, "refreshToken": 12345, "Name": "JOSÉ'
    assert REDACT.text(cut) == f'{{"user": "a", "client_secret": "{REDACTED}", "n": 1, ' \
                               f'"refreshToken": "{REDACTED}", "Name": "JOSÉ'
    assert REDACT.text("user=a&password=b&x=1") == f"user=a&password={REDACTED}&x=1"
    assert REDACT.query("q=doc%7B1%7D&access_token=abc&page=2") == \
        f"q=doc%7B1%7D&access_token={REDACTED}&page=2"


def _captured(data: bytes, content_type: str = "application/json", encoding: str = "", cap: int = 1024,
              size: int | None = None) -> Captured:
    captured = Captured(content_type=content_type, encoding=encoding, cap=cap)
    captured.feed(data)
    if size is not None:
        captured.size = size
    return captured


def test_bodies_are_kept_parsed_when_whole_and_cut_with_their_size_when_not() -> None:
    assert body_value(_captured(b'{"a": [1, 2], "token": "t"}'), REDACT) == {"a": [1, 2], "token": REDACTED}
    assert body_value(_captured(b"a=1&senha=2", "application/x-www-form-urlencoded"), REDACT) == {
        "a": "1", "senha": REDACTED}
    assert body_value(_captured(b"plain words"), REDACT) == "plain words"  # said JSON, is not: text
    big = b'{"password": "p", "data": "' + b"x" * 5000 + b'"}'
    kept = body_value(_captured(big, cap=100), REDACT)
    assert kept.startswith(f'{{"password": "{REDACTED}", "data": "xxx')
    assert kept.endswith(f"… [truncated: {len(big)} bytes in all]")
    assert body_value(_captured(b"\x89PNG\r\n\x1a\n\x00\x00\xff", "image/png"), REDACT) == {
        "content_type": "image/png", "bytes": 11}
    assert body_value(_captured(b""), REDACT) is None


def test_compressed_bodies_are_recorded_decoded() -> None:
    doc = b'{"Result": [{"Name": "ANA"}], "AccessToken": "t"}'
    expected = {"Result": [{"Name": "ANA"}], "AccessToken": REDACTED}
    assert body_value(_captured(gzip.compress(doc), encoding="gzip"), REDACT) == expected
    assert body_value(_captured(zlib.compress(doc), encoding="deflate"), REDACT) == expected
    assert body_value(_captured(b"\x00" * 40, encoding="br"), REDACT) == {
        "content_encoding": "br", "bytes": 40}


def test_records_are_fitted_to_the_contract_instead_of_being_lost() -> None:
    record = RecordFactory(seed=3).record()
    record.update(client_name="N" * 600, q="not the key{value} syntax", method="X" * 20,
                  tags={f"k{n}": n for n in range(70)})
    notes = fit_to_contract(record)
    assert call_record_validator()(record) is None
    assert len(record["client_name"]) == 512 and "q" not in record and len(record["tags"]) == 64
    assert record["tags"]["k1"] == "1" and notes
