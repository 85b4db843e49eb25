"""The query service's error boundary: whatever goes wrong inside, the caller gets JSON and no
internals; database trouble a caller can act on is a 503 that says what to do."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from query.access import auth
from query.app import create_app
from tests.stack import ROOT, Stack

# The application keeps its state under typed keys (query/state.py): a plain string key is an error here.
pytestmark = pytest.mark.filterwarnings("error::aiohttp.web.NotAppKeyWarning")


@auth.public
async def _boom(_: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail /etc/passwd")


@auth.public
async def _down(_: web.Request) -> web.Response:
    raise OperationalError("connection refused")


@auth.public
async def _slow(_: web.Request) -> web.Response:
    raise DatabaseError("Code: 159. Timeout exceeded", code=159)


@pytest.fixture(scope="module")
async def base(stack: Stack) -> AsyncIterator[str]:
    app = create_app(replace(stack.settings, cursor_secret=""))
    app.router.add_get("/boom", _boom)
    app.router.add_get("/down", _down)
    app.router.add_get("/slow", _slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_an_unexpected_error_is_a_generic_500(base: str) -> None:
    async with ClientSession() as http, http.get(f"{base}/boom") as answer:
        body = await answer.json()
    assert answer.status == 500
    assert body["error"]["message"].startswith("internal error")
    assert "secret internal detail" not in str(body) and "Traceback" not in str(body)


@pytest.mark.parametrize("path, says", [("/down", "not answering"), ("/slow", "took too long")])
async def test_database_trouble_is_a_503_saying_what_to_do(base: str, path: str, says: str) -> None:
    async with ClientSession() as http, http.get(f"{base}{path}") as answer:
        body = await answer.json()
    assert answer.status == 503 and says in body["error"]["message"]
    assert answer.headers["Retry-After"] == "5"


def test_a_port_in_use_is_one_clear_line(stack: Stack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**stack.env, "TRILHA_QUERY_PORT": str(port)}
        done = subprocess.run([sys.executable, "-m", "services.cli", "query"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"trilha: error: port 127.0.0.1:{port} for the query service (TRILHA_QUERY_PORT) is already in use: "
        "stop what uses it or choose another port"]
