"""Running the real scheduler's pass in the test process, with the clock set to a given instant:
what `trilha scheduler --once --now` does, without a process start per test."""

from __future__ import annotations

import asyncio
from datetime import datetime

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.scheduler import Scheduler
from services.settings import Settings


async def run_due(settings: Settings, ch: AsyncClient, now: datetime) -> list[str]:
    """Start every run due at `now` and wait for them; returns their outcomes."""
    scheduler = Scheduler(settings, ch, lambda: now)
    tasks = await scheduler.tick()
    return list(await asyncio.gather(*tasks))
