"""The one keyset over `calls` (and `call_terms`): a record's position is its sorting key after the
company, (timestamp, query_id), read newest first.

Timestamps travel as integer milliseconds, in SQL (`{name:Int64}` read by
`fromUnixTimestamp64Milli`), in rows (`toUnixTimestamp64Milli(timestamp)`) and in cursors: exact,
and free of any client-side time zone handling. `after()` is the one keyset condition every reader
uses: the plain bound on timestamp lets the primary key prune, the OR makes the seek exact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ORDER = "ORDER BY timestamp DESC, query_id DESC"
TS = "fromUnixTimestamp64Milli({%s:Int64}, 'UTC')"


class Key(NamedTuple):
    """Where a record sorts: (timestamp in Unix ms, query_id); newest first is descending order."""

    timestamp_ms: int
    query_id: str


def after() -> str:
    """Rows strictly older than the key bound as {after_ts:Int64}, {after_id:String}."""
    return (f"timestamp <= {TS % 'after_ts'} "
            f"AND (timestamp < {TS % 'after_ts'} OR query_id < {{after_id:String}})")


def after_params(key: Key) -> dict[str, int | str]:
    return {"after_ts": key.timestamp_ms, "after_id": key.query_id}


def millis(moment: datetime) -> int:
    """An instant as Unix milliseconds (a naive datetime is UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def instant(timestamp_ms: int) -> str:
    """Unix milliseconds as every answer shows a record's time: RFC 3339 UTC, `…T14:30:00.123Z`.

    Total over every stored value: the contract accepts `0001-01-01T00:00:00+01:00`, which is in
    year 0 in UTC, and ClickHouse stores it; Python's datetime stops at year 1, so such instants
    are computed by calendar arithmetic instead of failing the answer (or the checkpointer).
    Each second's text is cached: pages and checkpoint rounds write many instants per second."""
    seconds, milli = divmod(timestamp_ms, 1000)
    try:
        return f"{_second(seconds)}.{milli:03d}Z"
    except OverflowError:
        return _calendar_instant(timestamp_ms)


@lru_cache(maxsize=65_536)
def _second(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds").removesuffix("+00:00")


def instant_millis(text: str) -> int:
    """The inverse of `instant` (and any ISO 8601 instant with an offset) → Unix milliseconds,
    total over what `instant` writes, years beyond Python's datetime included."""
    try:
        return millis(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        parts = _INSTANT.fullmatch(text)
        if parts is None:
            raise
    year, month, day, hour, minute, second, milli = (int(n) for n in parts.groups())
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli


_INSTANT = re.compile(r"([+-]?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")


def _calendar_instant(timestamp_ms: int) -> str:
    """Any Unix millisecond in the proleptic Gregorian calendar (H. Hinnant's civil_from_days);
    years outside 0000-9999 carry a sign, as RFC 3339's expanded years (ISO 8601) do."""
    days, ms = divmod(timestamp_ms, 86_400_000)
    era, day_of_era = divmod(days + 719_468, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (month <= 2)
    seconds, milli = divmod(ms, 1000)
    hour, minute, second = seconds // 3600, seconds // 60 % 60, seconds % 60
    shown_year = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return f"{shown_year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"
