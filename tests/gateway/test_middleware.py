"""The aiohttp middleware: each request served becomes one record in ClickHouse, secrets hidden."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.gateway.capture import REDACTED, parse_networks
from services.gateway.emitter import Emitter
from services.gateway.middleware import Recorder, RecorderConfig
from services.runtime.settings import Settings
from tests.gateway.helpers import stored_calls
from tests.stack import Stack, free_port

COMPANY = f"gw-mw-{uuid.uuid4().hex[:8]}"


async def _pessoas(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"Result": [{"Name": "MARIA SILVA"}], "AccessToken": "tok-123",
                              "Status": {"code": 0}})


async def _boom(_: web.Request) -> web.Response:
    raise RuntimeError("database refused: password=hunter2")


async def _missing(_: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="documento não encontrado")


async def _own_id(_: web.Request) -> web.Response:
    return web.json_response({"ok": True}, headers={"X-Query-Id": "app-chosen-query-id"})


async def _search(_: web.Request) -> web.Response:
    return web.Response(text="found it")


async def _upload(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


async def _identity(request: web.Request, body: Any) -> dict[str, str | None]:
    """An async hook, as a gateway that looks its tokens up would write it."""
    return {"client_id": request.headers.get("X-Client-Id"), "client_name": "Maria Silva",
            "authorization_id": "auth-7", "authorization_name": "Integração ERP", "user_id": "u-42",
            "event": "consulta_pessoa" if isinstance(body, dict) else None}


@pytest.fixture(scope="module")
async def app_url(stack: Stack, gw_calls: Settings) -> AsyncIterator[str]:
    emitter = await Emitter(replace(gw_calls, data_dir=str(stack.data_dir)), name="gw-middleware").start()
    config = RecorderConfig(default_company=COMPANY, trusted_proxies=parse_networks("127.0.0.0/8"),
                            body_max_bytes=1024, server_name="api-gw-test", identity=_identity)
    app = web.Application()
    app.router.add_post("/pessoas", _pessoas, name="pessoas")
    app.router.add_get("/boom", _boom, name="boom")
    app.router.add_get("/missing", _missing)
    app.router.add_get("/own-id", _own_id, name="own_id")
    app.router.add_get("/search/{kind}", _search)
    app.router.add_post("/upload", _upload, name="upload")
    Recorder(emitter, config).install(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await emitter.close()


async def test_each_request_becomes_one_record_with_every_field_right(app_url: str, ch: AsyncClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    answers: dict[str, aiohttp.ClientResponse] = {}
    async with aiohttp.ClientSession() as http:
        body = {"Datasets": "basic_data", "q": "doc{12345678909},name{MARIA}", "password": "s3cret",
                "Tags": {"origem": "erp"}}
        headers = {"Authorization": "Bearer abc.def", "X-Client-Id": "client-9", "X-Trilha-Tag-Env": "prod",
                   "X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
        for name, method, path, kwargs in (
            ("pessoas", "POST", "/pessoas", {"json": body, "headers": headers}),
            ("boom", "GET", "/boom", {}),
            ("missing", "GET", "/missing", {}),
            ("own_id", "GET", "/own-id", {}),
            ("search", "GET", "/search/pf?q=doc{11144477735}&token=abc&page=2", {}),
            ("upload", "POST", "/upload", {"data": b"x" * 5000, "headers": {"Content-Type": "text/plain"}}),
        ):
            async with http.request(method, app_url + path, **kwargs) as answer:
                await answer.read()
                answers[name] = answer
    ids = {name: a.headers["X-Query-Id"] for name, a in answers.items()}
    assert ids["own_id"] == "app-chosen-query-id"  # the application's own QueryId wins
    assert len(set(ids.values())) == 6

    rows = await stored_calls(ch, COMPANY, set(ids.values()))
    assert set(rows) == set(ids.values())
    common = {"company_id": COMPANY, "server": "api-gw-test", "schema_version": 1}
    for row in rows.values():
        assert {k: row[k] for k in common} == common
        assert before <= row["timestamp"].replace(tzinfo=UTC) <= datetime.now(UTC)
        assert 0 < row["duration_ms"] < 10_000

    pessoas = rows[ids["pessoas"]]
    assert {k: pessoas[k] for k in ("method", "resource", "status", "error", "ip", "q", "tags", "event")} == {
        "method": "POST", "resource": "pessoas", "status": 200, "error": False,
        "ip": "203.0.113.7",  # the nearest hop before our trusted proxy, not what the client claims first
        "q": "doc{12345678909},name{MARIA}", "tags": {"env": "prod", "origem": "erp"},
        "event": "consulta_pessoa"}
    assert pessoas["url"] == f"{app_url}/pessoas"
    assert (pessoas["client_id"], pessoas["client_name"], pessoas["authorization_id"],
            pessoas["authorization_name"], pessoas["user_id"]) == (
        "client-9", "Maria Silva", "auth-7", "Integração ERP", "u-42")
    assert pessoas["request"] == {**body, "password": REDACTED}
    assert pessoas["result"] == {"Result": [{"Name": "MARIA SILVA"}], "AccessToken": REDACTED,
                                 "Status": {"code": 0}}

    boom = rows[ids["boom"]]
    assert (boom["status"], boom["error"], boom["resource"], boom["ip"]) == (500, True, "boom", "127.0.0.1")
    assert boom["error_message"] == f"RuntimeError: database refused: password={REDACTED}"

    missing = rows[ids["missing"]]
    assert (missing["status"], missing["error"], missing["resource"]) == (404, True, "/missing")
    assert missing["error_message"] == "documento não encontrado"

    search = rows[ids["search"]]
    assert search["url"] == f"{app_url}/search/pf?q=doc%7B11144477735%7D&token={REDACTED}&page=2"  # as sent
    assert search["request"] == {"q": "doc{11144477735}", "token": REDACTED, "page": "2"}
    assert (search["q"], search["resource"], search["result"]) == (
        "doc{11144477735}", "/search/{kind}", "found it")

    upload = rows[ids["upload"]]  # larger than the 1 KB cap: not read ahead, its size noted
    assert upload["request"] == "… [truncated: 5000 bytes in all]"
    assert upload["result"] == {"bytes": 5000}
