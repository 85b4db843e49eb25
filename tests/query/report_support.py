"""What the report tests share, on top of `tests.query.support`: records written straight into
ClickHouse, a real `trilha query` process, CLI-made tokens, and the expectations computed from
the records in plain Python (independently of the service's SQL)."""

from __future__ import annotations

import asyncio
import ipaddress
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from aiohttp import ClientSession, web

from tests.query import support
from tests.stack import Stack, free_port

Record = dict[str, Any]
company = support.unique_company
insert = support.raw_insert


async def token(stack: Stack, company_id: str) -> dict[str, str]:
    """Headers with a token made by `trilha tokens create`, as an operator makes one."""
    return support.bearer(await asyncio.to_thread(support.create_token, stack, company_id, None, "report tests"))


@asynccontextmanager
async def service(stack: Stack, name: str, **overrides: Any) -> AsyncIterator[tuple[ClientSession, str]]:
    """A real `trilha query` process (settings `overrides` applied); yields an HTTP session and its base URL."""
    async with support.query_service(stack, name, **overrides) as running:
        yield running.session, running.base


@dataclass
class Data:
    """What a report test module works with: the service, a company's token and its records."""

    session: ClientSession
    base: str
    headers: dict[str, str]
    records: list[Record]
    other_headers: dict[str, str] = field(default_factory=dict)


@asynccontextmanager
async def serving(stack: Stack, name: str, company_id: str, records: list[Record],
                  other_company: str | None = None) -> AsyncIterator[Data]:
    """A `trilha query` process and tokens for `company_id` (and `other_company`, to prove isolation)."""
    async with service(stack, name) as (session, base):
        other = await token(stack, other_company) if other_company else {}
        yield Data(session, base, await token(stack, company_id), records, other)


@asynccontextmanager
async def listening(app: web.Application) -> AsyncIterator[int]:
    """Serve `app` on 127.0.0.1 (a webhook receiver in the test's loop); yields its port."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


@asynccontextmanager
async def blackhole() -> AsyncIterator[str]:
    """A webhook receiver on 127.0.0.1 that accepts connections and never answers; yields its URL."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        for writer in held:
            writer.close()
        server.close()


def when(record: Record) -> datetime:
    return datetime.fromisoformat(record["timestamp"]).astimezone(UTC)


def newest_first(records: list[Record]) -> list[str]:
    """query_ids in the report's order: newest first, ties by query_id descending; each once."""
    unique = {r["query_id"]: r for r in records}
    ordered = sorted(unique.values(), key=lambda r: (when(r), r["query_id"]), reverse=True)
    return [r["query_id"] for r in ordered]


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def in_network(cidr: str) -> Callable[[Record], bool]:
    network = ipaddress.ip_network(cidr, strict=False)

    def check(record: Record) -> bool:
        if not record.get("ip"):
            return False
        address = ipaddress.ip_address(record["ip"])
        return address.version == network.version and address in network

    return check


async def all_pages(session: ClientSession, base: str, headers: dict[str, str],
                    params: dict[str, str]) -> tuple[list[Record], int]:
    """Follow next_cursor to the end; returns every row and the number of pages."""
    rows: list[Record] = []
    pages, cursor = 0, None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{base}/reports/api-logs", params=query, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            body = await answer.json()
        pages += 1
        rows += body["rows"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, pages


class HtmlTable(HTMLParser):
    """Collects the text of each table cell, as a browser would show it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ANN001
        if tag == "tr":
            self.rows.append([])
        elif tag in {"td", "th"}:
            self._cell = []
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, text: str) -> None:
        if self._cell is not None:
            self._cell.append(text)
