"""Bounds of a JSON text that only its bytes can show: nesting depth and Unicode validity.

The contract stores `request` and `result` as the JSON text they arrived as, located by msgspec but
never parsed into objects (that would cost more than everything else ingest does to a record). Yet
what is stored must be servable: the query service's JSON encoder (orjson) refuses more than 254
levels of nesting and strings that are not valid Unicode, and a client cannot read them either. So
the text is checked here, in C-speed passes over its bytes:

* one UTF-8 decode proves the encoding (an unpaired `\\ud800` escape msgspec already refuses,
  even inside a value it only locates);
* the common case is one `translate` that keeps only `[` and `{`: at most `max_depth` openers
  prove the depth bound (a text cannot nest deeper than it has openers);
* only a text with more openers than the limit takes the exact path: strings are cut out and the
  brackets reduced pair by pair (one pass per level, at most `max_depth` passes).
"""

from __future__ import annotations

import re

KEEP_OPENERS = bytes(b for b in range(256) if b not in b"[{")
# `bytes.translate(None, KEEP_OPENERS)` keeps only `[` and `{`: its length bounds any nesting.
_KEY = re.compile(rb'"([A-Za-z0-9_]{1,64})"\s*:')
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_PARENS = bytes(b for b in range(256) if b not in b"[]{}")


def text_problem(data: bytes, max_depth: int) -> str | None:
    """None if `data` (one JSON value, already known to be well-formed) is valid UTF-8, has no
    unpaired surrogate escape and nests at most `max_depth` containers; else what is wrong."""
    try:
        str(data, "utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8(data, exc)
    if len(data.translate(None, KEEP_OPENERS)) <= max_depth:
        return None
    return _too_deep(data, max_depth)


def message_not_utf8(message: bytes) -> str | None:
    """None if the whole message is UTF-8; else the problem, naming the field whose value breaks it
    (the last key before the bad byte, found with a pattern: good enough to point a producer at it)."""
    try:
        message.decode()
    except UnicodeDecodeError as exc:
        keys = _KEY.findall(message, 0, exc.start)
        field = f"`$.{keys[-1].decode()}`" if keys else "record"
        return f"{field} {not_utf8(message, exc)}"
    return None


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where the encoding breaks, in terms a producer can act on."""
    bad = data[exc.start:exc.end].hex(" ")
    return (f"is not valid UTF-8 (byte(s) {bad} at offset {exc.start}): every string must be UTF-8 encoded "
            "text; send binary data as base64")


def _too_deep(data: bytes, max_depth: int) -> str | None:
    brackets = _STRING.sub(b"", data).translate(_TO_PARENS, _NOT_PARENS)
    for _ in range(max_depth):
        if not brackets:
            return None
        brackets = brackets.replace(b"()", b"")
    if not brackets:
        return None
    return (f"is nested more than {max_depth} levels deep: flatten it, or send the deep part as a JSON "
            "string")

