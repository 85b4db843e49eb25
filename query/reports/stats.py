"""Dashboard figures for a report search: totals, errors, counts by status class, by resource and
per hour or day (with each bucket's p95), the top clients, and the p50/p95 duration.

The scan reads `calls FINAL`: ReplacingMergeTree merges copies of a record (same sorting key)
while reading, so a record written twice and not merged yet counts once — in the counts and in
the p50/p95 (`quantilesTiming`: exact below ~1 s, bounded memory). Measured on a month of 420,000
records: 69 ms, against 490 ms for `uniqExact(query_id)` plus a `LIMIT 1 BY` pass for the
quantiles. (Trilha's cluster mode replicates, it does not shard, so every copy of a record is on
the node that reads it.) One scan with GROUPING SETS gives every view; buckets start at the hour
or day in the request's time zone (a "day" is the operator's day, not UTC's).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.tenant import TenantScope
from query.errors import BadRequest
from query.reports import sql
from query.reports.filters import ReportFilter, View

HOURLY_UP_TO = timedelta(hours=48)
_BUCKET = {"hour": "toStartOfHour(timestamp, {tz:String})", "day": "toStartOfDay(timestamp, {tz:String})"}
TOP_CLIENTS = 10
# grouping(cls, resource, bucket, client_id): a bit is 1 when that column is aggregated away.
_TOTAL, _BY_CLASS, _BY_RESOURCE, _BY_BUCKET, _BY_CLIENT = 0b1111, 0b0111, 0b1011, 0b1101, 0b1110


def bucket_size(flt: ReportFilter, requested: str | None) -> str:
    """`hour` or `day`: hours for a range of two days or less, days otherwise (or as asked)."""
    if requested:
        if requested not in _BUCKET:
            raise BadRequest(f"bucket must be hour or day, not {requested!r}", "bucket")
        return requested
    if flt.since and flt.until and flt.until - flt.since <= HOURLY_UP_TO:
        return "hour"
    return "day"


async def compute(ch: AsyncClient, flt: ReportFilter, scope: TenantScope, view: View, bucket: str
                  ) -> dict[str, Any]:
    """One scan: `FINAL` merges unmerged copies on read, then GROUPING SETS counts every view."""
    scan = sql.over_calls(
        scope, flt, f"intDiv(status, 100) AS cls, {sql.shown('resource')} AS shown_resource, "
        f"{_BUCKET[bucket]} AS bucket, error, duration_ms, {sql.shown('client_id')} AS shown_client_id, "
        f"{sql.shown('client_name')} AS shown_client_name, {sql.shown('client_username')} AS shown_client_username",
        final=True, params={"tz": view.tz.key})
    query = replace(scan, sql=(
        "SELECT grouping(cls, shown_resource, bucket, shown_client_id) AS g, cls, shown_resource, "
        "toUnixTimestamp(bucket) AS b, count() AS n, countIf(error) AS e, "
        "quantilesTiming(0.5, 0.95)(duration_ms) AS q, "
        "shown_client_id, topK(1)((shown_client_name, shown_client_username))[1] AS who "  # the most used name
        f"FROM ({scan.sql}) GROUP BY GROUPING SETS ((), (cls), (shown_resource), (bucket), (shown_client_id))"))
    result = await tenant.query(ch, query, {"max_execution_time": 60})
    total, errors, durations = 0, 0, {"p50": None, "p95": None}
    classes: dict[str, int] = {}
    resources: list[dict[str, Any]] = []
    series: list[dict[str, Any]] = []
    top: list[dict[str, Any]] = []
    for g, cls, resource, start, n, e, (p50, p95), client, (name, username) in result.result_rows:
        if g == _TOTAL:
            total, errors = n, e
            durations = {"p50": float(p50), "p95": float(p95)} if n else durations
        elif g == _BY_CLASS:
            classes[f"{cls}xx" if cls else "unknown"] = n
        elif g == _BY_RESOURCE:
            resources.append({"resource": resource, "count": n, "errors": e})
        elif g == _BY_BUCKET:
            local = datetime.fromtimestamp(start, UTC).astimezone(view.tz)
            series.append({"start": local.isoformat(), "count": n, "errors": e, "p95_ms": float(p95)})
        elif g == _BY_CLIENT:
            top.append({"client_id": client, "client_name": name, "client_username": username, "count": n,
                        "errors": e})
    resources.sort(key=lambda r: (-r["count"], r["resource"]))
    series.sort(key=lambda s: s["start"])
    top.sort(key=lambda c: (-c["count"], c["client_id"]))
    return {"total": total, "errors": errors, "by_status_class": dict(sorted(classes.items())),
            "by_resource": resources, "buckets": {"size": bucket, "tz": view.tz.key, "series": series},
            "duration_ms": durations, "top_clients": top[:TOP_CLIENTS]}
