"""When a scheduled report is due, and which period of records each run covers.

A schedule says "daily / weekly on a weekday / monthly on a day, at HH:MM in a time zone". Its
occurrences are computed from that rule alone, as UTC instants, so a run's identity is
(schedule id, scheduled instant) no matter when or how often the scheduler looks: a restarted
scheduler finds exactly the occurrences it has not recorded yet. Local times are resolved in the
schedule's zone (a time skipped by a DST change lands just after the gap), and
a monthly day past the month's end means the month's last day (31 → 30 April, 28/29 February).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from query.errors import BadRequest
from query.reports.filters import fold, parse_tz

FREQUENCIES = ("daily", "weekly", "monthly")
PERIODS = {"previous_day": "daily", "previous_week": "weekly", "previous_month": "monthly"}
WEEKDAYS = (("monday", "segunda", "seg"), ("tuesday", "terca", "ter"), ("wednesday", "quarta", "qua"),
            ("thursday", "quinta", "qui"), ("friday", "sexta", "sex"), ("saturday", "sabado", "sab"),
            ("sunday", "domingo", "dom"))


@dataclass(frozen=True)
class Recurrence:
    """`weekday` is 0 = Monday … 6 = Sunday (ISO order); `day` is 1–31."""

    frequency: str
    at: time
    tz: ZoneInfo
    weekday: int | None = None
    day: int | None = None

    def matches(self, day: date) -> bool:
        if self.frequency == "weekly":
            return day.weekday() == self.weekday
        if self.frequency == "monthly":
            assert self.day is not None
            return day.day == min(self.day, calendar.monthrange(day.year, day.month)[1])
        return True

    def instant(self, day: date) -> datetime:
        """The UTC instant of this rule's time on local `day` (a time inside a DST gap is read with
        the offset before the change, i.e. it lands just after the gap; an ambiguous one is its
        first occurrence)."""
        return datetime.combine(day, self.at, self.tz).astimezone(UTC)

    def occurrences(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Scheduled instants in (after, until], oldest first."""
        day = after.astimezone(self.tz).date() - timedelta(days=1)
        last = until.astimezone(self.tz).date() + timedelta(days=1)
        while day <= last:
            if self.matches(day):
                moment = self.instant(day)
                if after < moment <= until:
                    yield moment
            day += timedelta(days=1)

    def next_after(self, moment: datetime, horizon_days: int = 400) -> datetime | None:
        return next(self.occurrences(moment, moment + timedelta(days=horizon_days)), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frequency": self.frequency, "time": self.at.strftime("%H:%M"),
                               "timezone": self.tz.key}
        if self.weekday is not None:
            out["weekday"] = self.weekday
        if self.day is not None:
            out["day"] = self.day
        return out


def parse(value: Any, parameter: str = "recurrence") -> Recurrence:
    """`{"frequency": "weekly", "weekday": 0, "time": "06:00", "timezone": "America/Sao_Paulo"}`."""
    if not isinstance(value, dict):
        raise BadRequest(f"{parameter} must be an object such as {{\"frequency\": \"daily\", \"time\": "
                         "\"06:00\", \"timezone\": \"America/Sao_Paulo\"}", parameter)
    unknown = set(value) - {"frequency", "time", "timezone", "weekday", "day"}
    if unknown:
        name = sorted(unknown)[0]
        raise BadRequest(f"unknown field {name!r} in {parameter}: use frequency, time, timezone, weekday or day",
                         f"{parameter}.{name}")
    frequency = value.get("frequency")
    if frequency not in FREQUENCIES:
        raise BadRequest(f"{parameter}.frequency must be daily, weekly or monthly, not {frequency!r}",
                         f"{parameter}.frequency")
    at = _time(value.get("time", "06:00"), f"{parameter}.time")
    zone = value.get("timezone")
    zone = "America/Sao_Paulo" if zone is None else zone  # only null is the default; "" or 0 is a 400
    if not isinstance(zone, str):
        raise BadRequest(f"{parameter}.timezone must be an IANA time zone name", f"{parameter}.timezone")
    tz = parse_tz(zone, f"{parameter}.timezone")
    weekday = _weekday(value.get("weekday"), f"{parameter}.weekday") if frequency == "weekly" else None
    day = _month_day(value.get("day"), f"{parameter}.day") if frequency == "monthly" else None
    for name, allowed in (("weekday", "weekly"), ("day", "monthly")):
        if value.get(name) is not None and frequency != allowed:
            raise BadRequest(f"{parameter}.{name} applies only to {allowed} schedules", f"{parameter}.{name}")
    return Recurrence(frequency, at, tz, weekday, day)


def period(name: str, scheduled: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) a run covers, in UTC: the local day, Monday-to-Sunday week or calendar
    month before the one the run is scheduled in."""
    today = scheduled.astimezone(tz).date()
    if name == "previous_day":
        start, end = today - timedelta(days=1), today
    elif name == "previous_week":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif name == "previous_month":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    else:
        raise ValueError(f"unknown period {name!r}")
    return _midnight(start, tz), _midnight(end, tz)


def parse_period(value: Any, frequency: str, parameter: str = "range") -> str:
    """A period name; by default the one matching the frequency (daily → previous_day …)."""
    if value is None:
        return next(name for name, freq in PERIODS.items() if freq == frequency)
    if not isinstance(value, str) or value not in PERIODS:  # a dict or list is a 400, not a TypeError
        raise BadRequest(f"{parameter} must be previous_day, previous_week or previous_month, not {value!r}",
                         parameter)
    return value


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _time(value: Any, parameter: str) -> time:
    try:
        if not isinstance(value, str) or len(value) != 5:
            raise ValueError
        return time.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{parameter} must be a time of day as HH:MM (24 h), not {value!r}", parameter) from None


def _weekday(value: Any, parameter: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    if isinstance(value, str):
        folded = fold(value).removesuffix("-feira")
        for number, names in enumerate(WEEKDAYS):
            if folded in names:
                return number
    raise BadRequest(f"{parameter} must be 0 (Monday) to 6 (Sunday) or a day name such as monday or segunda, "
                     f"not {value!r}", parameter)


def _month_day(value: Any, parameter: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 31:
        return value
    raise BadRequest(f"{parameter} must be a day of the month from 1 to 31 (past the month's end means its "
                     f"last day), not {value!r}", parameter)
