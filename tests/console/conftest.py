"""Browser tests of the web console: Debian's Chromium driven by Playwright for Python against a real
`trilha query` process on the session's embedded stack. One browser for the whole session, a fresh
context (no token, no storage) per test; a failing test leaves a screenshot in test-output/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.console.data import Demo, make_demo
from tests.query.support import QueryService, query_service
from tests.stack import ROOT, Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = ROOT / "test-output"
VIEWPORT = {"width": 1366, "height": 768}  # the laptop screen the console is made for


@dataclass
class Console:
    """A signed-in console page, the query service behind it and the demo data it shows."""

    page: Page
    service: QueryService
    demo: Demo
    errors: list[str]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: run `make install` as root, "
                    "or `apt-get install -y chromium`")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-console") as running:
        yield running


@pytest.fixture(scope="session")
async def demo(stack: Stack, ch) -> Demo:  # noqa: ANN001 - the session's ClickHouse client
    return await make_demo(stack, ch)


@pytest.fixture
async def console(request: pytest.FixtureRequest, browser: Browser, service: QueryService,
                  demo: Demo) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC",
                                        accept_downloads=True)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []  # script errors and CSP violations: the page must have none
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    await page.goto(service.base + "/")
    await page.wait_for_selector("body[data-ready='true']")
    await page.fill("#token", demo.token)
    await page.click("#token-form button[type=submit]")
    try:
        yield Console(page, service, demo, errors)
        assert errors == [], "the console logged errors"
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            OUTPUT.mkdir(exist_ok=True)
            await page.screenshot(path=str(OUTPUT / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', request.node.name)}.png"),
                                  full_page=True)
        await context.close()
