"""RFC 8785 (JSON Canonicalization Scheme) encoding: the one byte string a JSON value has.

A leaf of the proof tree is the canonical form of a record as the Events API returns it, so any
verifier, in any language, gets the same bytes from the same answer: object members sorted by
their names' UTF-16 code units, no whitespace, strings with only the escapes JCS requires, and
numbers as ECMAScript prints an IEEE 754 double (so integers beyond 2**53 are the double nearest
to them, as RFC 8785 §3.2.2.3 says).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring as _string  # C: escapes exactly what RFC 8785 escapes
from typing import Any

import orjson

_BELOW_E000 = bytes(range(0xEE))  # deleted from UTF-8, what is left are lead bytes of U+E000 and above
# Where orjson's number may not be RFC 8785's: an integral float (`1.0`, `-0.0`) or an exponent,
# which orjson always signs (its `1e-6`, `1e+16` are `0.000001`, `10000000000000000` there).
# orjson writes every other float in fixed notation with the shortest digits, as ECMAScript does.
# Searching for `.0`, `e+`, `e-` is a fast byte search; only where one occurs (an IP address, a
# version, a word) is the token around it looked at (`_maybe_unlike`): a number token follows `:`,
# `,` or `[` in orjson's compact output; text that merely looks like one only costs the exact check.
_HINTS = (b".0", b"e+", b"e-")
# A number token orjson may write otherwise than RFC 8785 (integral, or with an exponent), and what ends it.
_UNLIKE = re.compile(rb"-?[0-9]+(?:\.0|(?:\.[0-9]+)?e[-+][0-9]+)[,\]}]")
_IN_NUMBER = frozenset(b"0123456789-.")
_FLOATS: list[str] = []  # the float tokens `_FLOAT_SCANNER` met (one caller at a time: no await inside)
_FLOAT_SCANNER = json.JSONDecoder(parse_float=_FLOATS.append)


def dumps(value: Any) -> bytes:
    """The canonical UTF-8 bytes of `value` (dict, list, str, int, float, bool, None)."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts).encode("utf-8")


def _fast(container: dict[str, Any] | list[Any]) -> str | None:
    """orjson's sorted, compact output when it already is RFC 8785's (several times faster than
    walking): every float written as ECMAScript writes it (orjson writes `1.0` and `1e-6` where
    RFC 8785 has `1` and `0.000001`), no integer beyond 2**53 (refused by
    OPT_STRICT_INTEGER), no character from U+E000 up (where UTF-8 order, orjson's, and UTF-16
    order, RFC 8785's, differ); its string escapes are RFC 8785's. None: walk it instead."""
    try:
        out = orjson.dumps(container, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return None
    if not out.isascii() and out.translate(None, _BELOW_E000):
        return None
    text = out.decode()
    if not _maybe_unlike(out):
        return text
    _FLOATS.clear()
    _FLOAT_SCANNER.decode(text)  # C scanner; calls back only for float tokens
    return text if all(number(float(token)) == token for token in _FLOATS) else None


def _maybe_unlike(out: bytes) -> bool:
    """Whether orjson's compact output may hold a number RFC 8785 writes otherwise (see `_HINTS`):
    a hint that is inside a number token (after `:`, `,` or `[`, up to `,`, `]` or `}`)."""
    for hint in _HINTS:
        at = out.find(hint)
        while at >= 0:
            start = at
            while start and out[start - 1] in _IN_NUMBER:
                start -= 1
            if start and out[start - 1] in b":,[" and _UNLIKE.match(out, start):
                return True
            at = out.find(hint, at + 1)
    return False


def _write(value: Any, out: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is str:
        out(_string(value))
    elif (kind is dict or kind is list) and len(value) > 1 and (fast := _fast(value)) is not None:
        out(fast)
    elif kind is dict:
        keys = sorted(value) if "".join(value).isascii() else sorted(value, key=_utf16)
        out("{")
        first = True
        for key in keys:
            out(_string(key) + ":" if first else "," + _string(key) + ":")
            first = False
            _write(value[key], out)
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _write(item, out)
        out("]")
    elif value is None or value is True or value is False:
        out("null" if value is None else "true" if value else "false")
    elif kind is int:
        out(str(value) if -2**53 <= value <= 2**53 else number(float(value)))
    elif kind is float:
        out(number(value))
    else:
        raise TypeError(f"not JSON: {kind.__name__}")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be")


def number(x: float) -> str:
    """ECMAScript's Number.prototype.toString of a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError("JSON has no NaN or Infinity")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # n: the position of the decimal point relative to the first significant digit (value = 0.d1d2… × 10^n)
    n = len(whole) + int(exp or 0) if whole != "0" else int(exp or 0) - (len(frac) - len(frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e > 0 else '-'}{abs(e)}"
