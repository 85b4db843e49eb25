"""The console's other screens in a real Chromium: a schedule created from the report's filters, run
by the real scheduler and seen in its history (with its file downloaded), then deleted; the
dashboard's charts drawn from the stats API; the Events API by QueryId and by `q`, with paging."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from clickhouse_connect.driver.asyncclient import AsyncClient

from tests.console.conftest import OUTPUT, Console
from tests.console.data import CPF
from tests.console.helpers import after_load, first_loaded, rows
from tests.query.scheduler_support import run_due
from tests.query.support import bearer
from tests.stack import Stack


async def _schedules(c: Console) -> list[dict]:
    answer = await c.service.get("/reports/schedules", bearer(c.demo.token))
    return answer.body["schedules"]


async def test_schedule_created_run_seen_in_history_and_deleted(console: Console, stack: Stack,
                                                                 ch: AsyncClient) -> None:
    page = console.page
    await first_loaded(page)
    OUTPUT.mkdir(exist_ok=True)
    await page.fill("#filters [name=status]", "2xx")
    await page.click("#schedule")
    await page.fill("#schedule-form [name=name]", "Diário de sucesso")
    await page.fill("#schedule-form [name=time]", "06:15")
    await page.fill("#schedule-form [name=target]", "auditoria/diario")
    assert "2xx" in await page.text_content("#schedule-filters")
    await page.click("#schedule-form button[type=submit]")
    await page.wait_for_selector("#schedule-dialog", state="hidden")
    (created,) = await _schedules(console)
    assert created["filters"] == {"status": "2xx"} and created["recurrence"]["time"] == "06:15"

    await page.click("nav [data-tab=schedules]")
    row = page.locator("#sched-table tbody tr", has_text="Diário de sucesso")
    await row.wait_for()
    due = datetime.fromisoformat(created["next_run_at"])
    assert await run_due(stack.settings, ch, due + timedelta(seconds=5), console.demo.company) == ["delivered"]
    await row.locator("[data-act=history]").click()
    await page.wait_for_selector("#runs-table tbody tr td.run-delivered")
    (run,) = await rows(page, "#runs-table")
    assert run[2] == "entregue" and run[4].startswith("auditoria/diario/registros-de-api_")
    assert run[0] == due.strftime("%d/%m/%Y %H:%M")
    await page.screenshot(path=str(OUTPUT / "schedules.png"))
    async with page.expect_download() as info:
        await page.click("#runs-table [data-download]")
    assert (await info.value).suggested_filename == run[4].rsplit("/", 1)[1]

    await row.locator("[data-act=edit]").click()
    await page.fill("#schedule-form [name=time]", "07:45")
    await page.click("#schedule-form button[type=submit]")
    await page.wait_for_selector("#schedule-dialog", state="hidden")
    assert (await _schedules(console))[0]["recurrence"]["time"] == "07:45"

    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("[data-act=delete]").click()
    await row.wait_for(state="detached")
    assert await _schedules(console) == []


async def test_dashboard_draws_its_charts_and_refreshes_on_its_own(console: Console) -> None:
    page = console.page
    await first_loaded(page)
    await page.clock.install()  # the refresh timer is set when the tab opens: fake time can run it
    await page.click("nav [data-tab=dashboard]")
    await page.wait_for_selector("#chart-calls svg polyline.s-calls", state="attached")
    async with page.expect_request(lambda r: "/reports/api-logs/stats" in r.url):
        await page.clock.fast_forward(31_000)
    cards = await page.eval_on_selector_all("#dash-cards .card", "cs => cs.map(c => c.textContent)")
    assert f"Chamadas{len(console.demo.records)}" in cards
    assert await page.locator("#chart-calls svg polyline").count() == 2, "calls and errors"
    assert await page.locator("#chart-p95 svg polyline.s-p95").count() == 1
    assert await page.locator("#chart-resources svg rect.bar").count() >= 3
    busiest = Counter(r["client_id"] for r in console.demo.records).most_common(1)[0][0]
    top = next(r for r in console.demo.records if r["client_id"] == busiest and r["client_name"] != "Maria Souza")
    assert f"{top['client_name']} ({top['client_username']})" in await page.text_content("#chart-clients svg")
    assert "atualiza sozinho" in await page.text_content("#dash-msg")
    OUTPUT.mkdir(exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "dashboard.png"))


async def test_events_by_query_id_and_by_q_with_paging(console: Console) -> None:
    page, demo = console.page, console.demo
    await first_loaded(page)
    OUTPUT.mkdir(exist_ok=True)
    await page.click("nav [data-tab=events]")
    wanted = demo.records[77]
    when = datetime.fromisoformat(wanted["timestamp"])
    await page.fill("#events-form [name=QueryId]", wanted["query_id"])
    await page.fill("#events-form [name=QueryDate]", when.strftime("%d/%m/%Y"))
    await after_load(page, "#events-table", lambda: page.click("#events-form button[type=submit]"))
    (found,) = await rows(page, "#events-table")
    assert found[0] == wanted["query_id"] and f"doc{{{CPF}}}" in found[6]
    await page.locator("#events-table tbody tr").first.click()
    await page.wait_for_selector("#detail pre.json")
    assert '"q": "doc{' in await page.text_content("#detail")
    await page.screenshot(path=str(OUTPUT / "record.png"))
    await page.click("#detail [data-close]")

    await page.click("#events-form button[type=reset]")
    await page.fill("#events-form [name=q]", f"doc{{{CPF}}}")
    await page.fill("#events-form [name=PageSize]", "2")
    await after_load(page, "#events-table", lambda: page.click("#events-form button[type=submit]"))
    first = [r[0] for r in await rows(page, "#events-table")]
    await after_load(page, "#events-table", lambda: page.click("#events-next"))
    second = [r[0] for r in await rows(page, "#events-table")]
    assert sorted(first + second) == sorted(demo.records[n]["query_id"] for n in (3, 40, 77))
    assert len(first) == 2 and await page.is_disabled("#events-next")
    await page.screenshot(path=str(OUTPUT / "events.png"))
    await after_load(page, "#events-table", lambda: page.click("#events-prev"))
    assert [r[0] for r in await rows(page, "#events-table")] == first
