"""Running the real scheduler's pass in the test process, with the clock set to a given instant:
what `trilha scheduler --once --now` does, without a process start per test, and limited to one
company's schedules so that other tests' schedules on the shared ClickHouse are left alone."""

from __future__ import annotations

import asyncio
from datetime import datetime
from unittest import mock

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access.tenant import CrossTenant
from query.reports import scheduler as scheduler_module
from query.reports import schedules
from query.reports.scheduler import Scheduler
from services.runtime.settings import Settings


async def run_due(settings: Settings, ch: AsyncClient, now: datetime, company_id: str) -> list[str]:
    """Start every run of `company_id`'s schedules due at `now` and wait for them; returns their outcomes."""
    every = schedules.all_active

    async def company_only(client: AsyncClient, exemption: CrossTenant) -> list[schedules.Schedule]:
        return [s for s in await every(client, exemption) if s.company_id == company_id]

    with mock.patch.object(scheduler_module.schedules, "all_active", company_only):
        tasks = await Scheduler(settings, ch, lambda: now).tick()
    return list(await asyncio.gather(*tasks))
