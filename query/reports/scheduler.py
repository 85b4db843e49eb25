"""`trilha scheduler`: runs each scheduled report once when it is due, and delivers it.

Every tick it reads all live schedules and the run log, and starts:
- each occurrence after the schedule's newest recorded run (or its creation) up to now — so
  occurrences missed while the scheduler was down are caught up, in order, none skipped;
- each run whose last record is a failure, once its backoff has passed;
- each run left `started` by another scheduler process that has been silent for `--lease-s`
  (it died mid-run).
A run is identified by (schedule id, scheduled instant); its attempts are recorded before and
after delivery, and deliveries are idempotent per run (same file name renamed into place, same
`Idempotency-Key`), so a crash between delivery and its record repeats nothing a reader sees as
a second report. A run reads only its schedule's company. One scheduler process per stack.

Before each attempt the run checks that its schedule still exists and that the token that
created it is still valid; a deleted schedule's run in flight or waiting for a retry is
abandoned (the next tick cancels it), and a revoked token's schedule stops, its run record saying
why. Runs hold a slot of `report_runs_max` and one of their company's `report_company_runs_max`,
so one company's slow receivers cannot hold every slot; a webhook gets `webhook_timeout_s`.

`--once` does one pass and waits for its runs (retries included); `--now` pretends the clock
shows that instant, so a test or an operator can make a schedule due without waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tokens
from query.access.tenant import SCHEDULER_READS_EVERY_COMPANY
from query.reports import delivery, egress, recurrence, run_output, schedules
from query.reports.schedules import RunState, Schedule
from services.runtime import clients, logs, metrics, netcheck
from services.runtime.running import until_signalled
from services.runtime.settings import ConfigError, Settings

log = logs.get("query.reports.scheduler")
MAX_BACKOFF_S = 3600.0
DELETED = "abandoned: the schedule was deleted"
STOPPED = "stopped"  # a run's outcome when its schedule was deleted or its token revoked (recorded as abandoned)
REVOKED = ("stopped: the API token that created this schedule was revoked; create the schedule again "
           "with a valid token")
INTERNAL = "the report could not be prepared (an internal error, logged for the operator); it will be retried"
Clock = Callable[[], datetime]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="one pass: start due runs, wait for them, exit")
    parser.add_argument("--now", help="ISO 8601 instant to use as the current time (tests, catch-up checks)")
    parser.add_argument("--lease-s", type=float, default=600.0,
                        help="a run another scheduler started and left without an outcome this long is redone")


class Scheduler:
    """Finds due runs and executes them; `clock` is injectable so tests control 'now'."""

    def __init__(self, settings: Settings, ch: AsyncClient, clock: Clock, lease_s: float = 600.0,
                 registry: metrics.Registry | None = None) -> None:
        self.settings, self.ch, self.clock, self.lease = settings, ch, clock, timedelta(seconds=lease_s)
        self.runner = uuid.uuid4().hex[:12]
        self.slots = asyncio.Semaphore(settings.report_runs_max)  # a month of catch-up is not 30 exports at once
        self.company_slots: dict[str, asyncio.Semaphore] = {}
        self.inflight: dict[tuple[str, datetime], asyncio.Task[str]] = {}
        self.stopping: dict[tuple[str, datetime], str] = {}  # runs cancelled on purpose, with the reason
        self.registry = registry or metrics.Registry()
        self.outcomes = self.registry.counter("trilha_report_runs_total", "scheduled report runs by outcome")

    async def tick(self) -> list[asyncio.Task[str]]:
        """Start every run that is due now; returns the tasks started."""
        now = self.clock()
        every = SCHEDULER_READS_EVERY_COMPANY  # the one cross-tenant read; each run is then scoped
        active = await schedules.all_active(self.ch, every)
        latest = await schedules.latest_scheduled(self.ch, every)
        pending = await schedules.run_states(self.ch, every, pending_only=True)
        by_id = {s.schedule_id: s for s in active}
        self._cancel_deleted(by_id)
        started: list[asyncio.Task[str]] = []
        for schedule in active:
            anchor = max(schedule.created_at, latest.get(schedule.schedule_id, schedule.created_at))
            for at in schedule.recurrence.occurrences(anchor, now):
                started += self._start(schedule, at, 0)
        for state in pending:
            schedule = by_id.get(state.schedule_id)
            if schedule is not None and self._resumable(state, now):
                started += self._start(schedule, state.scheduled_for, state.attempts)
        return started

    def _cancel_deleted(self, live: dict[str, Schedule]) -> None:
        """Runs of schedules deleted since they started (in flight or waiting out a backoff) stop."""
        for key, task in list(self.inflight.items()):
            if key[0] not in live and key not in self.stopping:
                self.stopping[key] = DELETED
                task.cancel()

    def _resumable(self, state: RunState, now: datetime) -> bool:
        if (state.schedule_id, state.scheduled_for) in self.inflight:
            return False
        if state.status == "started":
            return state.runner != self.runner and now - state.recorded_at >= self.lease
        return now >= state.recorded_at + timedelta(seconds=self.backoff(state.attempts))

    def _start(self, schedule: Schedule, at: datetime, attempts: int) -> list[asyncio.Task[str]]:
        key = (schedule.schedule_id, at)
        if key in self.inflight:
            return []
        task = asyncio.create_task(self.run(schedule, at, attempts), name=f"report-{schedule.schedule_id}")
        self.inflight[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return [task]

    def _finished(self, key: tuple[str, datetime], task: asyncio.Task[str]) -> None:
        """A run that could not even record its outcome (ClickHouse away) is picked up again later:
        its last record says `started` or `failed`, and the next ticks resume it."""
        self.inflight.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("scheduled report run stopped", schedule=key[0], scheduled_for=key[1].isoformat(),
                        error=f"{type(exc).__name__}: {exc}"[:500])

    def backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_S, self.settings.report_retry_s * 2 ** max(0, attempt - 1))

    async def run(self, schedule: Schedule, at: datetime, attempts: int) -> str:
        """Attempt the run until delivered, out of attempts or stopped; returns the final status. Slots
        are held per attempt (the company's first, then the global one), not while waiting out a backoff."""
        period = recurrence.period(schedule.spec["range"], at, schedule.recurrence.tz)
        key = (schedule.schedule_id, at)
        try:
            while True:
                attempts += 1
                async with self._company_slot(schedule.company_id), self.slots:
                    reason = await self._stop_reason(schedule)
                    if reason:
                        return await self._stop(schedule, at, attempts, period, reason)
                    status = await self._attempt(schedule, at, attempts, period)
                if status != "failed":
                    return status
                await asyncio.sleep(self.backoff(attempts))
        except asyncio.CancelledError:
            reason = self.stopping.pop(key, None)
            if reason is None:
                raise
            return await asyncio.shield(self._stop(schedule, at, attempts, period, reason))

    def _company_slot(self, company_id: str) -> asyncio.Semaphore:
        slot = self.company_slots.get(company_id)
        if slot is None:
            slot = self.company_slots[company_id] = asyncio.Semaphore(self.settings.report_company_runs_max)
        return slot

    async def _stop_reason(self, schedule: Schedule) -> str:
        """Why this schedule must not run now ('' when it may): deleted, or its token revoked."""
        if await schedules.get(self.ch, schedule.company_id, schedule.schedule_id) is None:
            return DELETED
        owner = await tokens.lookup(self.ch, schedule.created_by)
        if owner is None or owner.revoked_at is not None or owner.company_id != schedule.company_id:
            return REVOKED
        return ""

    async def _stop(self, schedule: Schedule, at: datetime, attempt: int, period: tuple[datetime, datetime],
                    reason: str) -> str:
        await schedules.record_run(self.ch, schedule, at, attempt, "abandoned", self.runner, period, error=reason)
        self.outcomes.inc(outcome="abandoned")
        log.info("scheduled report stopped", schedule=schedule.schedule_id, company=schedule.company_id,
                 scheduled_for=at.isoformat(), reason=reason)
        return STOPPED

    async def _attempt(self, schedule: Schedule, at: datetime, attempt: int,
                       period: tuple[datetime, datetime]) -> str:
        """One attempt, recorded before (started) and after (delivered, failed or abandoned). The run
        record gets the failure's class only; the log gets the detail."""
        context = {"schedule": schedule.schedule_id, "company": schedule.company_id, "scheduled_for": at.isoformat(),
                   "attempt": attempt}
        await schedules.record_run(self.ch, schedule, at, attempt, "started", self.runner, period)
        try:
            rows, size, target = await self.deliver(schedule, at, period)
        except asyncio.CancelledError:
            if (schedule.schedule_id, at) not in self.stopping:
                await asyncio.shield(schedules.record_run(self.ch, schedule, at, attempt, "failed", self.runner,
                                                          period, error="interrupted: the scheduler stopped"))
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            shown, detail, final = _failure(exc)
            status = "abandoned" if final or attempt >= self.settings.report_max_attempts else "failed"
            await schedules.record_run(self.ch, schedule, at, attempt, status, self.runner, period, error=shown)
            self.outcomes.inc(outcome=status)
            log.warning("scheduled report failed", status=status, error=shown, detail=detail, **context)
            return status
        await schedules.record_run(self.ch, schedule, at, attempt, "delivered", self.runner, period,
                                   rows=rows, size=size, target=target)
        self.outcomes.inc(outcome="delivered")
        log.info("scheduled report delivered", rows=rows, bytes=size, target=target, **context)
        return "delivered"

    async def deliver(self, schedule: Schedule, at: datetime,
                      period: tuple[datetime, datetime]) -> tuple[int, int, str]:
        return await run_output.produce(self.settings, self.ch, schedule, at, period)


def _failure(exc: Exception) -> tuple[str, str, bool]:
    """(what the tenant's run record says, what the operator's log says, whether retrying is pointless)."""
    if isinstance(exc, delivery.DeliveryError):
        return str(exc), exc.detail, exc.final
    return INTERNAL, f"{type(exc).__name__}: {exc}"[:500], False


def clock_from(now: str | None) -> Clock:
    """The real clock, or one that starts at `now` and advances in real time."""
    if not now:
        return lambda: datetime.now(UTC)
    try:
        start = datetime.fromisoformat(now)
    except ValueError:
        raise ConfigError(f"--now {now!r} is not an ISO 8601 instant such as 2026-01-31T06:00:00-03:00") from None
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


async def serve(settings: Settings, once: bool, clock: Clock, lease_s: float) -> int:
    egress.policy(settings)  # a wrong TRILHA_WEBHOOK_ALLOW is one line at start, not a failure per run
    await netcheck.require_clickhouse(settings)
    ch = await clients.clickhouse(settings)
    registry = metrics.Registry()
    scheduler = Scheduler(settings, ch, clock, lease_s, registry)
    async with until_signalled(settings, None if once else registry, log) as stop:
        return await _tick_until(stop, scheduler, settings, once, ch)


async def _tick_until(stop: asyncio.Event, scheduler: Scheduler, settings: Settings, once: bool,
                      ch: AsyncClient) -> int:
    log.info("scheduler started", runner=scheduler.runner, once=once, reports_dir=str(delivery.base_dir(settings)))
    results: list[str] = []
    try:
        while not stop.is_set():
            try:
                tasks = await scheduler.tick()
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: log, look again next tick
                log.warning("scheduler tick failed", error=f"{type(exc).__name__}: {exc}"[:500])
                tasks = []
            if once:
                results = list(await asyncio.gather(*tasks, return_exceptions=True))
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.scheduler_tick_s)
    finally:
        for task in list(scheduler.inflight.values()):
            task.cancel()
        await asyncio.gather(*scheduler.inflight.values(), return_exceptions=True)
        await ch.close()
    log.info("scheduler stopped", runner=scheduler.runner)
    if once:
        delivered = sum(1 for r in results if r == "delivered")
        stopped = sum(1 for r in results if r == STOPPED)  # deleted, or its token revoked: as intended
        print(f"scheduler: {len(results)} run(s), {delivered} delivered, {stopped} stopped", flush=True)
        return 0 if delivered + stopped == len(results) else 1
    return 0


def command(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(settings.log_level, settings.log_format, component="scheduler")
    os.makedirs(delivery.base_dir(settings), exist_ok=True)
    return asyncio.run(serve(settings, args.once, clock_from(args.now), args.lease_s))
