""".NET-style custom date patterns (`yyyy-MM-dd`, `dd/MM/yyyy`, `yyyy-MM-ddTHH:mm:ss`, ...).

The seed platform's clients send `QueryDate` with a `DateFormat` written the way .NET's
`DateTime.ToString(format)` takes it, so Trilha reads those patterns instead of inventing its own.
Supported: yyyy yy MM M dd d HH H mm m ss s f…fffffff (fractions) zzz zz K (offsets), quoted
literals ('...' or "..."), backslash escapes, and any other character as itself. Patterns that need
a culture (month or day names, 12-hour clocks, eras) are refused with a message listing what works,
since guessing them would silently pick a wrong date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from query.errors import BadRequest, shown

SUPPORTED = "yyyy, yy, MM, M, dd, d, HH, H, mm, m, ss, s, f…fffffff, zzz, zz, K, 'literal'"
_FIELDS = {"yyyy": ("year", r"\d{4}"), "yy": ("year2", r"\d{2}"), "MM": ("month", r"\d{2}"),
           "M": ("month", r"\d{1,2}"), "dd": ("day", r"\d{2}"), "d": ("day", r"\d{1,2}"),
           "HH": ("hour", r"\d{2}"), "H": ("hour", r"\d{1,2}"), "mm": ("minute", r"\d{2}"),
           "m": ("minute", r"\d{1,2}"), "ss": ("second", r"\d{2}"), "s": ("second", r"\d{1,2}"),
           "zzz": ("offset", r"[+-]\d{2}:\d{2}"), "zz": ("offset", r"[+-]\d{2}"),
           "K": ("offset", r"Z|[+-]\d{2}:\d{2}|")}
_SPECIFIERS = set("dfFghHKmMstyz")
_RUN = re.compile(r"(.)\1*")


def compile_pattern(pattern: str, parameter: str = "DateFormat") -> re.Pattern[str]:
    """A regex with named groups for `pattern`, or BadRequest saying what is not supported."""
    parts, seen, index = [], set(), 0
    while index < len(pattern):
        char = pattern[index]
        if char in "'\"":
            end = pattern.find(char, index + 1)
            if end < 0:
                raise BadRequest(f"{parameter} has an unclosed quote {char}", parameter)
            parts.append(re.escape(pattern[index + 1:end]))
            index = end + 1
            continue
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        run = _RUN.match(pattern, index).group(0)  # type: ignore[union-attr]
        index += len(run)
        if char not in _SPECIFIERS:
            parts.append(re.escape(run))
            continue
        name, regex = _field(run, parameter)
        if name in seen or (name.startswith("year") and {"year", "year2"} & seen):
            raise BadRequest(f"{parameter} {shown(pattern)} gives the {name.removesuffix('2')} twice", parameter)
        seen.add(name)
        parts.append(f"(?P<{name}>{regex})")
    missing = [f for f in ("year", "month", "day") if f not in seen and not (f == "year" and "year2" in seen)]
    if missing:
        raise BadRequest(f"{parameter} {shown(pattern)} has no {' or '.join(missing)}: a date needs yyyy, MM and dd "
                         "(e.g. yyyy-MM-dd)", parameter)
    return re.compile("".join(parts))


def _field(run: str, parameter: str) -> tuple[str, str]:
    if run in _FIELDS:
        return _FIELDS[run]
    if set(run) == {"f"} and len(run) <= 7:
        return "fraction", rf"\d{{{len(run)}}}"
    raise BadRequest(f"{parameter} uses {shown(run)}, which Trilha does not support (names of months or days, "
                     f"12-hour clocks and eras depend on a culture); use: {SUPPORTED}", parameter)


def parse(value: str, pattern: str, parameter: str = "QueryDate",
          format_parameter: str = "DateFormat") -> datetime:
    """`value` read with `pattern`; without an offset in the pattern the time is UTC."""
    match = compile_pattern(pattern, format_parameter).fullmatch(value)
    if match is None:
        raise BadRequest(f"{parameter} {shown(value)} does not match {format_parameter} {shown(pattern)}: send "
                         f"the date written as {shown(pattern)}, or send the {format_parameter} it is written in",
                         parameter)
    groups = match.groupdict()
    year = int(groups["year"]) if groups.get("year") else 2000 + int(groups["year2"])
    fraction = groups.get("fraction") or "0"
    try:
        return datetime(year, int(groups["month"]), int(groups["day"]), int(groups.get("hour") or 0),
                        int(groups.get("minute") or 0), int(groups.get("second") or 0),
                        int(fraction.ljust(6, "0")[:6]), tzinfo=_zone(groups.get("offset")))
    except ValueError as exc:
        raise BadRequest(f"{parameter} {shown(value)} is not a real date ({exc})", parameter) from None


def _zone(offset: str | None) -> timezone:
    if not offset or offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    hours, _, minutes = offset[1:].partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
