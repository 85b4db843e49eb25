"""The console's completeness screen in a real Chromium: numbered records of one gateway go through
the real broker and `trilha ingest` with some withheld; the screen shows the watermark and the gap
ranges, in Portuguese and in English, and shows the gateway complete once the withheld ones arrive."""

from __future__ import annotations

import asyncio
import time
import uuid

from playwright.async_api import Page

from services.stack.records import RecordFactory
from tests.console.conftest import OUTPUT, Console
from tests.console.helpers import after_load, rows
from tests.ingest.support import produce
from tests.query.support import create_token, unique_company
from tests.query.test_gateway_completeness import numbered
from tests.stack import Stack


async def _sign_in(page: Page, token: str) -> None:
    """The fixture signed in as the demo company; this screen looks at a company of its own."""
    await page.click("#forget")
    await page.wait_for_selector("body[data-ready='true']")
    await page.fill("#token", token)
    await page.click("#token-form button[type=submit]")


async def _table(page: Page) -> list[list[str]]:
    await after_load(page, "#gw-table", lambda: page.click("#gw-refresh"))
    return await rows(page, "#gw-table")


async def _table_once(page: Page, done, timeout: float = 90) -> list[list[str]]:  # noqa: ANN001
    """Refresh the screen until `done(rows)` (ingest writes in its own time)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = await _table(page)
        if (shown and done(shown)) or time.monotonic() > deadline:
            return shown
        await asyncio.sleep(0.5)


async def test_the_screen_shows_a_gap_and_its_closing(console: Console, stack: Stack) -> None:
    page, settings = console.page, stack.with_topic(f"gw-console-{uuid.uuid4().hex[:6]}")
    company, gateway, factory = unique_company("gwview"), "edge-console.0f0f0f0f", RecordFactory(seed=41)
    withheld = [3, 9, 10, 11]
    await produce(settings, numbered(factory, company, gateway, [n for n in range(1, 1201) if n not in withheld]))
    stack.spawn("ingest-gw-console", "ingest", settings=settings)
    try:
        token = create_token(stack, company)
        await _sign_in(page, token)
        await page.click("nav [data-tab=gateways]")
        shown = await _table_once(page, lambda table: table[0][2] == "1.200")
        assert shown == [[gateway, "2", "1.200", "1.196", "4", "3, 9–11", shown[0][6]]]
        assert "1 gateway(s); 1 com lacunas." in await page.text_content("#gw-msg")
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "gateways.png"))

        await produce(settings, numbered(factory, company, gateway, withheld))
        shown = await _table_once(page, lambda table: table[0][1] == "1.200")
        assert shown[0][1:6] == ["1.200", "1.200", "1.200", "0", "nenhuma"]
        await page.select_option("#lang", "en")
        await page.wait_for_function("() => document.querySelector('#gw-table th').textContent === 'Gateway'")
        assert (await _table(page))[0][1:6] == ["1,200", "1,200", "1,200", "0", "none"]
    finally:
        stack.stop("ingest-gw-console")
