"""Dashboard stats for a report search: counts by status class, by resource and per hour/day in the
caller's zone, and p50/p95 duration — each record counted once even while a duplicate of it is
still stored."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.stack import Stack

START = datetime(2026, 4, 1, 1, 10, tzinfo=UTC)
SP = ZoneInfo("America/Sao_Paulo")

NAME = "query-report-stats"  # the `trilha query` process these tests use (its log: <data_dir>/NAME.log)



@pytest.fixture(scope="module")
async def data(stack: Stack, ch: AsyncClient) -> AsyncIterator[rs.Data]:
    mine = rs.company("rep-stats")
    records = RecordFactory(seed=81, companies=1).records(400, start=START, step=timedelta(minutes=9, seconds=7),
                                                          company=mine)
    await rs.insert(ch, records)
    await rs.insert(ch, records[:120])  # stored twice until merged: must not count twice
    async with rs.serving(stack, NAME, mine, records) as served:
        yield served


async def _stats(data: rs.Data, **params: str) -> dict:
    async with data.session.get(f"{data.base}/reports/api-logs/stats", params=params,
                                headers=data.headers) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


def _near_rank(values: list[float], q: float, got: float) -> bool:
    """`got` is the q-quantile of `values` up to rank interpolation and whole milliseconds."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = ordered[max(0, math.floor(rank) - 1)], ordered[min(len(ordered) - 1, math.ceil(rank) + 1)]
    return math.floor(low) - 1 <= got <= high + 1


async def test_counts_match_the_records_once_each(data: rs.Data) -> None:
    stats = await _stats(data)
    records = data.records
    assert stats["total"] == len(records)
    assert stats["errors"] == sum(r["error"] for r in records)
    assert stats["by_status_class"] == dict(sorted(Counter(f"{r['status'] // 100}xx" for r in records).items()))
    by_resource = {r["resource"]: r["count"] for r in stats["by_resource"]}
    assert by_resource == dict(Counter(r["resource"] for r in records))
    assert stats["buckets"]["size"] == "day"
    days = Counter(rs.when(r).astimezone(SP).date().isoformat() for r in records)
    assert {s["start"][:10]: s["count"] for s in stats["buckets"]["series"]} == dict(days)
    assert all(s["start"].endswith("T00:00:00-03:00") for s in stats["buckets"]["series"])
    durations = [r["duration_ms"] for r in records]
    assert _near_rank(durations, 0.5, stats["duration_ms"]["p50"])
    assert _near_rank(durations, 0.95, stats["duration_ms"]["p95"])


async def test_hourly_buckets_for_a_short_filtered_range(data: rs.Data) -> None:
    stats = await _stats(data, status="2xx", **{"from": "01/04/2026 00:00", "until": "01/04/2026 11:59"})
    low, high = datetime(2026, 4, 1, 0, 0, tzinfo=SP), datetime(2026, 4, 1, 12, 0, tzinfo=SP)
    want = [r for r in data.records if 200 <= r["status"] < 300 and low <= rs.when(r) < high]
    assert stats["total"] == len(want) and stats["errors"] == 0
    assert stats["buckets"]["size"] == "hour"
    hours = Counter(rs.when(r).astimezone(SP).replace(minute=0, second=0, microsecond=0).isoformat() for r in want)
    assert {s["start"]: s["count"] for s in stats["buckets"]["series"]} == dict(hours)


async def test_an_empty_result_has_zero_counts_and_no_durations(data: rs.Data) -> None:
    stats = await _stats(data, client_id="nobody")
    assert (stats["total"], stats["errors"], stats["by_resource"]) == (0, 0, [])
    assert stats["duration_ms"] == {"p50": None, "p95": None}


async def test_bucket_parameter_is_checked(data: rs.Data) -> None:
    async with data.session.get(f"{data.base}/reports/api-logs/stats", params={"bucket": "week"},
                                headers=data.headers) as answer:
        assert answer.status == 400 and (await answer.json())["error"]["parameter"] == "bucket"


async def test_dashboard_series_carry_p95_and_the_top_clients_count_each_record_once(data: rs.Data) -> None:
    stats = await _stats(data, bucket="day")
    records = data.records
    assert all(s["p95_ms"] >= 0 for s in stats["buckets"]["series"])
    by_day: dict[str, list[float]] = {}
    for r in records:
        by_day.setdefault(rs.when(r).astimezone(SP).date().isoformat(), []).append(r["duration_ms"])
    for s in stats["buckets"]["series"]:
        assert _near_rank(by_day[s["start"][:10]], 0.95, s["p95_ms"]), s
    clients = Counter(r["client_id"] for r in records)
    expected = sorted(clients.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(c["client_id"], c["count"]) for c in stats["top_clients"]] == expected
    names = {r["client_id"]: (r["client_name"], r["client_username"]) for r in records}
    assert all((c["client_name"], c["client_username"]) == names[c["client_id"]] for c in stats["top_clients"])
