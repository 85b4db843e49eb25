"""What one scheduled run produces and where it goes: the CSV of the run's period, written to a
spool file (so a slow receiver never holds a ClickHouse query open), counted, then handed to the
schedule's destination — a directory, or a signed webhook POST whose `Idempotency-Key` names the
run so a receiver can tell a retry from a new report."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import datetime
from pathlib import Path

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.tenant import TenantScope
from query.calls.keyset import millis
from query.reports import csv_export, delivery, sql
from query.reports.fields import word
from query.reports.filters import ReportFilter, View
from query.reports.runs import period_label
from query.reports.schedules import Schedule
from services.runtime.settings import Settings


async def produce(settings: Settings, ch: AsyncClient, schedule: Schedule, at: datetime,
                  period: tuple[datetime, datetime]) -> tuple[int, int, str]:
    """Write the CSV for the run's period to a spool file, then deliver it; (rows, bytes, target)."""
    flt = schedule.report_filter(*period)
    view = View(schedule.recurrence.tz, schedule.spec.get("lang", "pt"))
    spool = delivery.base_dir(settings) / ".spool" / f"{schedule.schedule_id}-{millis(at)}.csv"
    spool.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = await _spool(ch, schedule, flt, view, spool)
        rows = await _count(ch, schedule, flt)
        name = f"{word('file_name', view.lang)}_{period_label(*period, view.tz)}_{schedule.schedule_id[:8]}.csv"
        dest = schedule.destination
        if dest.kind == "directory":
            target = await asyncio.to_thread(delivery.to_directory, settings, schedule.company_id, dest, spool, name)
        else:
            headers = {"Idempotency-Key": f"{schedule.schedule_id}-{millis(at)}",
                       "X-Trilha-Schedule-Id": schedule.schedule_id, "X-Trilha-Scheduled-For": sql.utc_seconds(at),
                       "X-Trilha-Period-From": sql.utc_seconds(period[0]),
                       "X-Trilha-Period-Until": sql.utc_seconds(period[1]),
                       "X-Trilha-Rows": str(rows)}
            outcome = await delivery.to_webhook(settings, dest, schedule.secret, spool, name, headers)
            target = f"{dest.describe()} {outcome}"
        return rows, size, target
    finally:
        spool.unlink(missing_ok=True)


async def _spool(ch: AsyncClient, schedule: Schedule, flt: ReportFilter, view: View, spool: Path) -> int:
    size = 0
    with spool.open("wb") as out:
        async with aclosing(csv_export.stream(ch, flt, TenantScope(schedule.company_id), view, schedule.csv)) as chunks:
            async for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
    return size


async def _count(ch: AsyncClient, schedule: Schedule, flt: ReportFilter) -> int:
    count = sql.over_calls(TenantScope(schedule.company_id), flt, "uniqExact(query_id)")
    result = await tenant.query(ch, count)
    return int(result.result_rows[0][0])
