"""The one keyset over `calls` (and `call_terms`): a record's position is its sorting key after the
company, (timestamp, query_id), read newest first.

Timestamps travel as integer milliseconds, in SQL (`{name:Int64}` read by
`fromUnixTimestamp64Milli`), in rows (`toUnixTimestamp64Milli(timestamp)`) and in cursors: exact,
and free of any client-side time zone handling. `after()` is the one keyset condition every reader
uses: the plain bound on timestamp lets the primary key prune, the OR makes the seek exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
    """Unix milliseconds as every answer shows a record's time: RFC 3339 UTC, `…T14:30:00.123Z`."""
    moment = EPOCH + timedelta(milliseconds=timestamp_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
