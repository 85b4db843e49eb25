"""Scheduled reports ("Agendar relatório"): what a schedule is, and where schedules and their runs
are kept (ClickHouse, company-scoped).

A schedule belongs to the token that created it (`created_by`): the scheduler runs it only while
that token is valid, so revoking a token also stops what it scheduled. A webhook schedule has a
signing secret (`signing`), returned once by `create` and never by `to_json`.

A schedule is stored as versions of one row (ReplacingMergeTree on version); deleting writes a
newer version marked deleted, so the history stays and no mutation is needed. Runs are an
append-only log (`report_runs`): one row when an attempt starts and one with its outcome, keyed
by (schedule, scheduled instant, attempt) — the scheduler reads the latest row of each run to
know what is done, what failed and what was cut short by a restart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.tenant import CONDITION, CrossTenant, Statement, TenantScope, cross_tenant
from query.errors import BadRequest
from query.reports import delivery, egress, recurrence, signing
from query.reports.csv_export import CsvOptions, parse_options
from query.reports.delivery import Destination
from query.reports.filters import FILTER_NAMES, ReportFilter, parse_filter
from query.reports.recurrence import Recurrence
from query.reports.sql import ch_time, utc, utc_seconds

FORMATS = ("csv",)
_SPEC_FIELDS = {"name", "filters", "recurrence", "range", "format", "destination", "lang", "csv"}
_SCHEDULE_FILTERS = tuple(n for n in FILTER_NAMES if n not in {"from", "until"})
TERMINAL = ("delivered", "abandoned")


@dataclass(frozen=True)
class Schedule:
    """A stored schedule; `spec` is its normalised JSON form (what POST accepted)."""

    schedule_id: str
    company_id: str
    created_at: datetime
    created_by: str
    spec: dict[str, Any]
    secret: str = field(default="", repr=False)  # signs webhook bodies; never shown after creation

    @property
    def recurrence(self) -> Recurrence:
        return recurrence.parse(self.spec["recurrence"])

    @property
    def destination(self) -> Destination:
        return delivery.parse(self.spec["destination"])

    @property
    def csv(self) -> CsvOptions:
        return parse_options(self.spec.get("csv", {}))

    def report_filter(self, since: datetime, until: datetime) -> ReportFilter:
        """The schedule's filters over one run's period (the period is always the run's, never stored)."""
        return replace(parse_filter(self.spec["filters"], self.recurrence.tz), since=since, until=until)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.schedule_id, **self.spec,
                "created_at": utc_seconds(self.created_at)}


@dataclass(frozen=True)
class RunState:
    """The latest record of one run (schedule, scheduled instant)."""

    company_id: str
    schedule_id: str
    scheduled_for: datetime
    status: str
    attempts: int
    runner: str
    recorded_at: datetime
    rows: int
    target: str
    error: str


def parse_spec(body: dict[str, Any], rules: egress.Policy) -> dict[str, Any]:
    """Validate a POST body into the normalised spec that is stored (400 naming the field); a webhook
    URL is checked against the operator's `rules`."""
    for name in body:
        if name not in _SPEC_FIELDS:
            raise BadRequest(f"unknown field {name!r}: a schedule has {', '.join(sorted(_SPEC_FIELDS))}", name)
    rule = recurrence.parse(body.get("recurrence"))
    filters = _filters(body.get("filters"), rule)
    fmt = body.get("format", "csv")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be csv, not {fmt!r}", "format")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise BadRequest("name must be a text of at most 200 characters", "name")
    lang = _lang(body.get("lang"))
    options = _csv(body.get("csv"))
    spec: dict[str, Any] = {
        "name": (name or "").strip(), "filters": filters, "recurrence": rule.to_json(),
        "range": recurrence.parse_period(body.get("range"), rule.frequency), "format": fmt, "lang": lang,
        "csv": {"sep": "tab" if options.sep == "\t" else options.sep, "bom": options.bom},  # as documented
        "destination": delivery.parse(body.get("destination"), rules=rules).to_json(),
    }
    return spec


def _filters(value: Any, rule: Recurrence) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("filters must be an object of report filters, e.g. {\"status\": \"5xx\"}", "filters")
    for name in value:
        if name in {"from", "until"}:
            raise BadRequest(f"filters.{name} is not allowed: a scheduled report's period comes from range "
                             "(previous_day, previous_week or previous_month)", f"filters.{name}")
        if name not in _SCHEDULE_FILTERS:
            raise BadRequest(f"unknown filter {name!r}: use {', '.join(_SCHEDULE_FILTERS)}", f"filters.{name}")
    parse_filter(value, rule.tz, prefix="filters.")  # validation; the text is kept as the user wrote it
    out = {}
    for name, item in value.items():
        if item is None or (isinstance(item, str) and not item.strip()):
            continue
        out[name] = ("true" if item else "false") if isinstance(item, bool) else str(item).strip()
    return out


def _lang(value: Any) -> str:
    """pt or en as the document lists them; null is the default (pt)."""
    if value is None:
        return "pt"
    if value not in ("pt", "en"):
        raise BadRequest(f"lang must be pt or en, not {value!r}", "lang")
    return value


def _csv(value: Any) -> CsvOptions:
    if value is None:
        return CsvOptions()
    if not isinstance(value, dict) or set(value) - {"sep", "bom"}:
        raise BadRequest("csv must be an object with sep (; , | or tab) and bom (true or false)", "csv")
    if value.get("bom") is not None and not isinstance(value["bom"], bool):  # JSON true/false, as documented
        raise BadRequest(f"csv.bom must be true or false, not {value['bom']!r}", "csv.bom")
    if value.get("sep") is not None and value["sep"] not in (";", ",", "|", "tab", "\t"):
        raise BadRequest(f"csv.sep must be one of ; , | or tab, not {value['sep']!r}", "csv.sep")
    try:
        return parse_options(value)
    except BadRequest as exc:
        raise BadRequest(exc.message.replace("sep", "csv.sep", 1).replace("bom", "csv.bom", 1),
                         f"csv.{exc.parameter}") from None


async def create(ch: AsyncClient, company_id: str, created_by: str, spec: dict[str, Any]) -> Schedule:
    """Store a new schedule; a webhook one gets its signing secret here (the caller shows it once)."""
    now = datetime.now(UTC)
    secret = signing.new_secret() if spec["destination"]["type"] == "webhook" else ""
    schedule = Schedule(uuid.uuid4().hex, company_id, now, created_by, spec, secret)
    await _write(ch, schedule, deleted=False, version=now)
    return schedule


async def delete(ch: AsyncClient, company_id: str, schedule_id: str) -> bool:
    """Mark deleted; False when the company has no such schedule (another company's id included)."""
    found = await get(ch, company_id, schedule_id)
    if found is None:
        return False
    await _write(ch, found, deleted=True, version=datetime.now(UTC))
    return True


async def update(ch: AsyncClient, company_id: str, schedule_id: str, spec: dict[str, Any]) -> Schedule | None:
    """Store `spec` as the schedule's newer version (id, creation and runs kept); None if not the company's."""
    found = await get(ch, company_id, schedule_id)
    if found is None:
        return None
    webhook = spec["destination"]["type"] == "webhook"
    secret = (found.secret or signing.new_secret()) if webhook else ""  # a new webhook gets its secret here
    updated = replace(found, spec=spec, secret=secret)
    await _write(ch, updated, deleted=False, version=datetime.now(UTC))
    return updated


async def get(ch: AsyncClient, company_id: str, schedule_id: str) -> Schedule | None:
    return next(iter(await _read(ch, company_id, schedule_id)), None)


async def list_for(ch: AsyncClient, company_id: str) -> list[Schedule]:
    return await _read(ch, company_id, None)


async def all_active(ch: AsyncClient, exemption: CrossTenant) -> list[Schedule]:
    """Every company's live schedules: only the scheduler process reads across companies (under the
    named exemption it passes), and each run it makes is then scoped to its schedule's own company."""
    return await _read(ch, exemption, None)


async def _write(ch: AsyncClient, schedule: Schedule, deleted: bool, version: datetime) -> None:
    await tenant.command(ch, TenantScope(schedule.company_id).statement(
        "INSERT INTO report_schedules (company_id, schedule_id, version, deleted, created_at, created_by, spec, "
        "signing_secret) VALUES ({company:String}, {id:String}, {version:DateTime64(6, 'UTC')}, {deleted:UInt8}, "
        "{created:DateTime64(3, 'UTC')}, {by:String}, {spec:String}, {secret:String})",
        {"id": schedule.schedule_id, "version": version.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
         "deleted": int(deleted), "created": ch_time(schedule.created_at), "by": schedule.created_by,
         "spec": orjson.dumps(schedule.spec).decode(), "secret": schedule.secret}))


async def _read(ch: AsyncClient, who: str | CrossTenant, schedule_id: str | None) -> list[Schedule]:
    """One company's schedules (or one of them), or under an exemption every company's."""
    where = "WHERE 1" if isinstance(who, CrossTenant) else f"WHERE {CONDITION}"
    params = {} if schedule_id is None else {"id": schedule_id}
    if schedule_id is not None:
        where += " AND schedule_id = {id:String}"
    sql = ("SELECT company_id, schedule_id, min(created_at), argMax(created_by, version), argMax(spec, version), "
           f"argMax(signing_secret, version), argMax(deleted, version) AS gone FROM report_schedules {where} "
           "GROUP BY company_id, schedule_id HAVING gone = 0 ORDER BY min(created_at), schedule_id")
    result = await tenant.query(ch, _scoped(who, sql, params))
    return [Schedule(sid, company, utc(created), by, orjson.loads(spec), secret)
            for company, sid, created, by, spec, secret, _ in result.result_rows]


async def record_run(ch: AsyncClient, schedule: Schedule, scheduled_for: datetime, attempt: int, status: str,
                     runner: str, period: tuple[datetime, datetime], rows: int = 0, size: int = 0,
                     target: str = "", error: str = "") -> None:
    """Append one row to the run log; the run's identity is (schedule, scheduled_for)."""
    await tenant.command(ch, TenantScope(schedule.company_id).statement(
        "INSERT INTO report_runs (company_id, schedule_id, scheduled_for, attempt, status, recorded_at, runner, "
        "period_from, period_until, rows, bytes, target, error) VALUES ({company:String}, {id:String}, "
        "{at:DateTime64(3, 'UTC')}, {attempt:UInt16}, {status:String}, now64(6), {runner:String}, "
        "{since:DateTime64(3, 'UTC')}, {until:DateTime64(3, 'UTC')}, {rows:UInt64}, {bytes:UInt64}, "
        "{target:String}, {error:String})",
        {"id": schedule.schedule_id, "at": ch_time(scheduled_for), "attempt": attempt, "status": status,
         "runner": runner, "since": ch_time(period[0]), "until": ch_time(period[1]), "rows": rows, "bytes": size,
         "target": target, "error": error[:2000]}))


async def run_states(ch: AsyncClient, who: str | CrossTenant, pending_only: bool = False) -> list[RunState]:
    """The latest record of each run: one company's, or under an exemption every company's (the
    scheduler); optionally only unfinished ones."""
    where = "" if isinstance(who, CrossTenant) else f"WHERE {CONDITION}"
    having = f"HAVING last_status NOT IN ({', '.join(repr(t) for t in TERMINAL)})" if pending_only else ""
    result = await tenant.query(ch, _scoped(who,
        "SELECT company_id, schedule_id, scheduled_for, argMax(status, (attempt, recorded_at)) AS last_status, "
        "max(attempt), argMax(runner, (attempt, recorded_at)), max(recorded_at), "
        "argMax(rows, (attempt, recorded_at)), argMax(target, (attempt, recorded_at)), "
        f"argMax(error, (attempt, recorded_at)) FROM report_runs {where} "
        f"GROUP BY company_id, schedule_id, scheduled_for {having} ORDER BY scheduled_for"))
    return [RunState(c, s, utc(at), status, attempts, runner, utc(rec), rows, target, error)
            for c, s, at, status, attempts, runner, rec, rows, target, error in result.result_rows]


async def latest_scheduled(ch: AsyncClient, exemption: CrossTenant) -> dict[str, datetime]:
    """Per schedule, the newest scheduled instant that has any run record: occurrences after it are new."""
    result = await tenant.query(ch, cross_tenant(
        exemption, "SELECT schedule_id, max(scheduled_for) FROM report_runs GROUP BY schedule_id"))
    return {sid: utc(at) for sid, at in result.result_rows}


def _scoped(who: str | CrossTenant, sql: str, params: dict[str, Any] | None = None) -> Statement:
    """One company's statement, or a read of every company under a named exemption."""
    if isinstance(who, CrossTenant):
        return cross_tenant(who, sql, params)
    return TenantScope(who).statement(sql, params)
