"""What the browser tests do again and again: wait for a table to finish loading after an action,
and read its rows as the user sees them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import Page


async def loads(page: Page, table: str) -> int:
    value = await page.get_attribute(table, "data-loads")
    return int(value or 0)


async def after_load(page: Page, table: str, action: Callable[[], Awaitable[object]]) -> None:
    """Do `action` and wait until `table` has finished one more load than before."""
    before = await loads(page, table)
    await action()
    await page.wait_for_function(
        "([sel, n]) => Number(document.querySelector(sel).dataset.loads || 0) > n", arg=[table, before])


async def rows(page: Page, table: str) -> list[list[str]]:
    """Each body row's cell texts."""
    return await page.eval_on_selector_all(
        f"{table} tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")


async def first_loaded(page: Page, table: str = "#logs-table") -> None:
    await page.wait_for_function("sel => Number(document.querySelector(sel).dataset.loads || 0) > 0", arg=table)
