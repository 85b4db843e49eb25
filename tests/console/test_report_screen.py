"""The "Registros de API" screen in a real Chromium: the seed's top bar, the filters (status class and
an "até" minute, counted against the API), paging forward and back, a row opening the whole record,
pt-BR numbers and dates whatever the browser's locale, CSV export and the print view."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from tests.console.conftest import OUTPUT, Console
from tests.console.data import SP
from tests.console.helpers import after_load, first_loaded, rows
from tests.query.report_support import all_pages
from tests.query.support import bearer

TABLE = "#logs-table"
BR_MINUTE = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$")
TOP_BAR = ["Mostrar os filtros", "Atualizar", "Exibir ações", "Imprimir relatório", "Exportar CSV", "Agendar relatório"]


def br(moment) -> str:  # noqa: ANN001
    return moment.astimezone(SP).strftime("%d/%m/%Y %H:%M")


async def _search(c: Console, **filters: str) -> None:
    page = c.page
    await page.click("#filters button[type=reset]")
    for name, value in filters.items():
        if name == "error":
            await page.select_option(f"#filters [name={name}]", value)
        else:
            await page.fill(f"#filters [name={name}]", value)
    await after_load(page, TABLE, lambda: page.click("#filters button[type=submit]"))


async def test_top_bar_filters_until_minute_paging_and_record(console: Console) -> None:
    page, demo = console.page, console.demo
    await first_loaded(page)
    OUTPUT.mkdir(exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "console.png"))  # the README's picture (docs/console.png)
    for label in TOP_BAR:
        button = page.locator(f"#logs .toolbar > [aria-label='{label}'], #logs .menu-wrap > [aria-label='{label}']")
        assert await button.count() == 1 and await button.get_attribute("title") == label
        assert await button.locator("svg").count() == 1, f"{label} has its icon"
    assert len(await page.locator("#filters input, #filters select").all()) == 10
    await page.click("#actions")
    assert await page.is_visible("#actions-menu") and await page.get_attribute("#actions", "aria-expanded") == "true"
    await page.keyboard.press("Escape")
    assert await page.is_hidden("#actions-menu")
    csp = (await console.service.get("/")).headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]

    first, last = demo.minute(0), demo.minute(4)
    expected = demo.between(first, last, status_class=2)
    await _search(console, status="2xx", **{"from": br(first), "until": br(last)})
    params = {"status": "2xx", "from": br(first), "until": br(last), "tz": "America/Sao_Paulo"}
    api_rows, _ = await all_pages(console.service.session, console.service.base, bearer(demo.token), params)
    assert sorted(r["query_id"] for r in api_rows) == sorted(expected), "the API includes the whole 'até' minute"

    seen, pages = [], []
    while True:
        shown = await rows(page, TABLE)
        pages.append(shown)
        seen += [r[0] for r in shown]
        assert all(len(r) == 15 for r in shown) and all(BR_MINUTE.match(r[14]) for r in shown)
        if await page.is_disabled("#next"):
            break
        await after_load(page, TABLE, lambda: page.click("#next"))
    assert sorted(seen) == sorted(expected) and len(pages) == -(-len(expected) // 30) >= 2
    assert await page.text_content("#page-label") == f"Página {len(pages)}"
    await after_load(page, TABLE, lambda: page.click("#prev"))
    assert await rows(page, TABLE) == pages[-2], "back shows the previous page again"

    width = await page.evaluate(
        "[document.documentElement.scrollWidth, document.querySelector('#logs-table').offsetWidth]")
    assert max(width) <= 1366, f"the screen fits 1366 px without sideways scrolling: {width}"
    heights = await page.eval_on_selector_all(f"{TABLE} tbody tr", "trs => trs.map(tr => tr.offsetHeight)")
    assert max(heights) <= 32, f"one line per row, not {max(heights)} px"
    url_cell = page.locator(f"{TABLE} tbody tr").first.locator("td").nth(10)
    assert await url_cell.get_attribute("title") == await url_cell.text_content(), "the full text on hover"

    await page.locator(f"{TABLE} tbody tr").first.click()
    await page.wait_for_selector("#detail pre.json")
    detail = await page.text_content("#detail")
    assert "Requisição" in detail and '"Datasets"' in detail and "Resultado" in detail
    await page.click("#detail [data-close]")


async def test_pt_br_numbers_client_and_english_switch(console: Console) -> None:
    page = console.page
    await first_loaded(page)
    await _search(console, client="maria.souza")
    (row,) = await rows(page, TABLE)
    assert row[2] == "Maria Souza (maria.souza)" and row[13] == "36,172", "pt-BR in an en-US browser"
    await page.fill("#filters [name=from]", "31/02/2026 10:00")
    await page.click("#filters button[type=submit]")
    await page.wait_for_function("() => document.querySelector('#logs-msg').textContent.includes('inválida')")
    assert await page.text_content("#logs-msg") == "Data inválida em “Data/Hora”: use DD/MM/AAAA HH:MM."
    await page.fill("#filters [name=from]", "")
    await after_load(page, TABLE, lambda: page.select_option("#lang", "en"))
    assert await page.text_content(f"{TABLE} thead") == "".join(
        ["Code", "Client ID", "Client", "Authorization ID", "Authorization", "IP", "Resource", "Event", "Method",
         "Status", "URL", "Server", "Error", "Time (ms)", "Date/Time"])
    assert await page.get_attribute("#refresh", "title") == "Refresh"
    minute = console.demo.minute(2)
    await page.fill("#filters [name=client]", "")
    for name in ("from", "until"):  # English dates are typed YYYY-MM-DD HH:MM, still in São Paulo time
        await page.fill(f"#filters [name={name}]", minute.strftime("%Y-%m-%d %H:%M"))
    await after_load(page, TABLE, lambda: page.click("#filters button[type=submit]"))
    shown = await rows(page, TABLE)
    assert sorted(r[0] for r in shown) == sorted(console.demo.between(minute, minute))
    assert all(r[14] == minute.strftime("%Y-%m-%d %H:%M") for r in shown)
    await page.select_option("#lang", "pt")


async def test_csv_export_and_print_view(console: Console, tmp_path: Path) -> None:
    page, demo = console.page, console.demo
    await first_loaded(page)
    await _search(console, status="4xx")
    expected = demo.between(demo.minute(-1), demo.minute(60), status_class=4)
    async with page.expect_download() as info:
        await page.click("#csv")
    download = await info.value
    target = tmp_path / download.suggested_filename
    await download.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig"), newline=""), delimiter=";"))
    assert table[0][0] == "Código" and sorted(r[0] for r in table[1:]) == sorted(expected)

    async with page.context.expect_page() as popup:
        await page.click("#print")
    printed = await popup.value
    await printed.wait_for_load_state()
    await printed.wait_for_selector("table")
    assert "Registros de API" in await printed.title() or "Registros de API" in await printed.text_content("body")
    assert await printed.locator("tbody tr").count() == len(expected)
    await printed.close()
