"""Report query parameters → a typed, validated `ReportFilter` (or a 400 naming the parameter).

Everything a user can type is checked here, once: the SQL builder only ever sees values of the
right type and range, and an IP block, a status class or a local date is already resolved to
the bounds the query binds. Dates typed without a zone are read in the request's time zone, and
`until` includes everything up to the end of the precision it was typed with ("até 10:30"
includes 10:30:59), because that is what a user reading `DD/MM/AAAA HH:MM` rows expects.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from query.errors import BadRequest, shown
from query.reports.fields import LANGUAGES
from services.runtime.settings import yes_no

FILTER_NAMES = ("client_id", "client", "authorization_id", "authorization", "ip", "resource", "status", "error",
                "from", "until")
VIEW_NAMES = ("tz", "lang")
DEFAULT_TZ = "America/Sao_Paulo"
# each named filter's cap; tests/query/test_openapi_limits.py holds the document's maxLength to it
MAX_NAMED_TEXT = _MAX_TEXT = {"client_id": 256, "client": 512, "authorization_id": 256, "authorization": 512,
                              "resource": 256}
MAX_TEXT = 512  # any filter value; the named ones above are shorter
_IPV4_MAPPED = 0xFFFF << 32
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.I)
_BR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})([.,]\d+)?)?)?)?"
                       r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?$")


@dataclass(frozen=True)
class ReportFilter:
    """A validated report search. Bounds are inclusive except `until`, which is exclusive (UTC)."""

    client_id: str | None = None
    client: str | None = None
    authorization_id: str | None = None
    authorization: str | None = None
    ip: tuple[str, str] | None = None
    resource: str | None = None
    status: tuple[int, int] | None = None
    error: bool | None = None
    since: datetime | None = None
    until: datetime | None = None

    def canonical(self) -> dict[str, Any]:
        """What defines the result set, JSON-ready: the cursor scope hashes this."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True)
class View:
    """How results are shown: the time zone for local dates and the labels' language."""

    tz: ZoneInfo
    lang: str


def single_values(query: Mapping[str, Any]) -> dict[str, str]:
    """A query string as name → value; a parameter given twice is refused rather than half-used."""
    getall = getattr(query, "getall", None)
    out: dict[str, str] = {}
    for name in query:
        if name in out:
            continue
        values = getall(name) if getall else [query[name]]
        if len(values) > 1:
            raise BadRequest(f"{name} was given {len(values)} times: give it once", name)
        out[name] = values[0]
    return out


def parse_view(params: Mapping[str, Any], default_tz: str = DEFAULT_TZ) -> View:
    """`tz` (IANA name, default America/Sao_Paulo) and `lang` (pt or en, default pt)."""
    return View(parse_tz(_text(params, "tz") or default_tz, "tz"), parse_lang(_text(params, "lang") or "pt"))


def parse_tz(name: str, parameter: str) -> ZoneInfo:
    """An IANA time zone such as America/Sao_Paulo, or a 400 naming `parameter`."""
    if len(name) > 64 or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) or ".." in name:
        raise BadRequest(f"{parameter} must be an IANA time zone such as America/Sao_Paulo, not {shown(name)}",
                         parameter)
    if name not in _zone_names():
        raise BadRequest(f"{parameter} {shown(name)} is not a known time zone: use an IANA name such as "
                         "America/Sao_Paulo or UTC (not the right/ or posix/ variants)", parameter)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{parameter} {shown(name)} is not a known time zone: use an IANA name such as "
                         "America/Sao_Paulo or UTC", parameter) from None


@cache
def _zone_names() -> frozenset[str]:
    """The IANA names both Python and ClickHouse know: `available_timezones()` leaves out the
    leap-second `right/` and the `posix/` copies (ClickHouse refuses `right/UTC`) and files such
    as `localtime` that are no zone name."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def parse_lang(value: str, parameter: str = "lang") -> str:
    lang = value.strip().lower().split("-")[0]
    if lang not in LANGUAGES:
        raise BadRequest(f"{parameter} must be one of {', '.join(LANGUAGES)}, not {shown(value)}", parameter)
    return lang


def parse_filter(params: Mapping[str, Any], tz: ZoneInfo, prefix: str = "") -> ReportFilter:
    """The filters present in `params` (blank values count as absent, as an empty form field does).

    `prefix` is put before parameter names in error messages (a schedule's `filters.`).
    """
    def name(key: str) -> str:
        return prefix + key

    texts = {key: _bounded(params, key, name(key)) for key in _MAX_TEXT}
    ip, status, error = (_text(params, key, name(key)) for key in ("ip", "status", "error"))
    since = _instant(_text(params, "from", name("from")), tz, name("from"), end=False)
    until = _instant(_text(params, "until", name("until")), tz, name("until"), end=True)
    if since and until and until <= since:
        raise BadRequest(f"{name('until')} is before {name('from')}: give an end after the start", name("until"))
    return ReportFilter(
        client_id=texts["client_id"], client=texts["client"], authorization_id=texts["authorization_id"],
        authorization=texts["authorization"], resource=texts["resource"],
        ip=parse_ip(ip, name("ip")) if ip else None,
        status=parse_status(status, name("status")) if status else None,
        error=parse_yes_no(error, name("error")) if error else None,
        since=since, until=until)


def parse_ip(value: str, parameter: str = "ip") -> tuple[str, str]:
    """An address or CIDR block as an inclusive IPv6 range (IPv4 as ::ffff:a.b.c.d, as stored)."""
    try:
        network = ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_network(
            ipaddress.ip_address(value.split("%")[0]))
    except ValueError:
        raise BadRequest(f"{parameter} must be an IP address (10.0.0.1, 2001:db8::1) or a CIDR block "
                         f"(10.0.0.0/8, 2001:db8::/32), not {shown(value)}", parameter) from None
    low, high = int(network.network_address), int(network.broadcast_address)
    if network.version == 4:
        low, high = low | _IPV4_MAPPED, high | _IPV4_MAPPED
    return str(ipaddress.IPv6Address(low)), str(ipaddress.IPv6Address(high))


def parse_status(value: str, parameter: str = "status") -> tuple[int, int]:
    """An exact HTTP status (100–599) or a class such as 4xx, as an inclusive range."""
    klass = _STATUS_CLASS.match(value)
    if klass:
        first = int(klass.group(1)) * 100
        return first, first + 99
    if value.isascii() and value.isdigit() and 100 <= int(value) <= 599:
        return int(value), int(value)
    raise BadRequest(f"{parameter} must be an HTTP status code from 100 to 599 (e.g. 404) or a class "
                     f"1xx to 5xx (e.g. 4xx), not {shown(value)}", parameter)


def parse_yes_no(value: str, parameter: str = "error") -> bool:
    answer = yes_no(fold(value))
    if answer is not None:
        return answer
    raise BadRequest(f"{parameter} must be sim or não (also yes/no, true/false), not {shown(value)}", parameter)


def fold(value: str) -> str:
    """Lower case without accents, as `trilha_fold` does in ClickHouse ("Não" → "nao")."""
    return "".join(c for c in unicodedata.normalize("NFD", value.strip().lower()) if not unicodedata.combining(c))


def _instant(value: str | None, tz: ZoneInfo, parameter: str, end: bool) -> datetime | None:
    """A typed date as UTC; for an end bound, the first instant after its precision (exclusive)."""
    if value is None:
        return None
    moment, step = _parse_moment(value.strip(), tz, parameter)
    if not 1970 <= moment.year <= 2200:
        raise BadRequest(f"{parameter} {shown(value)} is outside the years 1970 to 2200", parameter)
    return (moment + step if end else moment).astimezone(UTC)


def _parse_moment(value: str, tz: ZoneInfo, parameter: str) -> tuple[datetime, timedelta]:
    brazilian = _BR_DATE.match(value)
    if brazilian:
        day, month, year, hour, minute, second = brazilian.groups()
        step = timedelta(days=1) if hour is None else timedelta(minutes=1) if second is None else timedelta(seconds=1)
        try:
            local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        except ValueError:
            raise _bad_date(value, parameter) from None
        return local.replace(tzinfo=tz), step
    iso = _ISO_TIME.match(value)
    if not iso:
        raise _bad_date(value, parameter)
    try:
        moment = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        raise _bad_date(value, parameter) from None
    hour, minute, second, fraction = iso.groups()
    step = (timedelta(days=1) if hour is None else timedelta(hours=1) if minute is None
            else timedelta(minutes=1) if second is None else timedelta(seconds=1) if fraction is None
            else timedelta(milliseconds=1))
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)), step


def _bad_date(value: str, parameter: str) -> BadRequest:
    return BadRequest(f"{parameter} must be ISO 8601 (2024-05-31T14:30:00-03:00, or without an offset in the "
                      f"request's tz) or DD/MM/AAAA HH:MM, not {shown(value)}", parameter)


def _text(params: Mapping[str, Any], key: str, parameter: str | None = None) -> str | None:
    """A parameter as stripped text (numbers and booleans from a JSON body too); blank is absent."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(f"{parameter or key} must be a string", parameter or key)
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{parameter or key} is {len(value)} characters long; the maximum is {MAX_TEXT}",
                         parameter or key)
    return value.strip() or None


def _bounded(params: Mapping[str, Any], key: str, parameter: str) -> str | None:
    """A named filter within its cap, counted as sent (spaces included), as the document's maxLength."""
    raw = params.get(key)
    if isinstance(raw, str) and len(raw) > _MAX_TEXT[key]:
        raise BadRequest(f"{parameter} is {len(raw)} characters long; the maximum is {_MAX_TEXT[key]}", parameter)
    return _text(params, key, parameter)
