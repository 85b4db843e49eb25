"""What the report tests share: records written straight into ClickHouse, a query service serving
the real application over HTTP, a token per company, and the expectations computed from the
records in plain Python (independently of the service's SQL)."""

from __future__ import annotations

import ipaddress
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from clickhouse_connect.driver.asyncclient import AsyncClient

from query import tokens
from query.app import create_app
from services.settings import Settings

Record = dict[str, Any]
_INSERT_SETTINGS = {"date_time_input_format": "best_effort", "input_format_json_read_objects_as_strings": 1}


def company(prefix: str) -> str:
    """A company id no other test uses, so tests share one ClickHouse without seeing each other."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def insert(ch: AsyncClient, records: list[Record]) -> None:
    """Write records as ingest does (JSONEachRow, nested JSON kept as text)."""
    body = b"\n".join(orjson.dumps(r) for r in records)
    await ch.raw_insert("calls", None, body, fmt="JSONEachRow", settings=_INSERT_SETTINGS)


async def token(ch: AsyncClient, company_id: str) -> dict[str, str]:
    _, value = await tokens.create(ch, company_id, name="report tests")
    return {"Authorization": f"Bearer {value}"}


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[ClientSession, str]]:
    """The query application on a real local port; yields an HTTP session and its base URL."""
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            yield session, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


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
