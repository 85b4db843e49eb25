"""Shared by the query-service tests: records written straight into ClickHouse, tokens made by the
real CLI, and the query service running as a real `trilha query` process spoken to over HTTP.

Records go in as JSONEachRow through `raw_insert` into `calls` (as ingest writes them); the
materialized views fill `call_ids` and `call_terms`, so every read path sees them at once.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime.netcheck import wait_for_port
from tests.stack import ROOT, Stack, free_port

Record = dict[str, Any]
INSERT_SETTINGS = {"date_time_input_format": "best_effort", "input_format_json_read_objects_as_strings": 1}


def unique_company(prefix: str = "co") -> str:
    """A company id no other test uses: tests share one ClickHouse without seeing each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def raw_insert(ch: AsyncClient, records: list[Record], table: str = "calls") -> None:
    """Write records as ingest does: one JSONEachRow block, nested JSON kept as its text."""
    body = b"\n".join(orjson.dumps(r) for r in records)
    await ch.raw_insert(table, None, body, fmt="JSONEachRow", settings=INSERT_SETTINGS)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `trilha <args>` as a user would, against the test stack."""
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=60)


def create_token(stack: Stack, company: str, user: str | None = None, name: str | None = None) -> str:
    """`trilha tokens create`; the token is the last line of its output."""
    args = ["tokens", "create", "--company", company]
    args += ["--user", user] if user else []
    args += ["--name", name] if name else []
    done = cli(stack, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class QueryService:
    """A running `trilha query` process and an HTTP session to it."""

    stack: Stack
    name: str
    base: str
    session: ClientSession

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> Answer:
        data = raw if raw is not None else orjson.dumps(body)
        async with self.session.post(self.base + path, data=data, headers={
                "Content-Type": "application/json", **(headers or {})}) as response:
            return await _answer(response)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        async with self.session.get(self.base + path, headers=headers or {}) as response:
            return await _answer(response)

    def log(self) -> str:
        return self.stack.log(self.name)


async def _answer(response: Any) -> Answer:
    text = await response.text()
    try:
        body: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = text
    return Answer(response.status, body, dict(response.headers))


@asynccontextmanager
async def query_service(stack: Stack, name: str, **overrides: Any) -> AsyncIterator[QueryService]:
    """`trilha query` on a free port as its own process; stopped (SIGTERM) on exit."""
    settings = replace(stack.settings, query_port=free_port(), **overrides)
    proc = stack.spawn(name, "query", settings=settings)
    try:
        if not wait_for_port("127.0.0.1", settings.query_port, 60) or proc.poll() is not None:
            raise RuntimeError(f"trilha query did not start:\n{stack.log(name)}")
        async with ClientSession(timeout=ClientTimeout(total=60)) as session:
            yield QueryService(stack, name, f"http://127.0.0.1:{settings.query_port}", session)
    finally:
        stack.stop(name)
