"""RFC 8785 (JSON Canonicalization Scheme) encoding: the one byte string a JSON value has.

A leaf of the proof tree is the canonical form of a record as the Events API returns it, so any
verifier, in any language, gets the same bytes from the same answer: object members sorted by
their names' UTF-16 code units, no whitespace, strings with only the escapes JCS requires, and
numbers as ECMAScript prints an IEEE 754 double (so integers beyond 2**53 are the double nearest
to them, as RFC 8785 §3.2.2.3 says).
"""

from __future__ import annotations

import math
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def dumps(value: Any) -> bytes:
    """The canonical UTF-8 bytes of `value` (dict, list, str, int, float, bool, None)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(number(float(value)) if not isinstance(value, int) or abs(value) > 2**53 else str(value))
    elif isinstance(value, dict):
        out.append("{")
        for n, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be"))):
            out.append("," if n else "")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            out.append("," if n else "")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"not JSON: {type(value).__name__}")


def _string(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in text) + '"'


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
