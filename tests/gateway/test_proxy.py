"""`trilha gateway`: what passes through is unchanged, and every call it forwards is recorded."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient
from multidict import CIMultiDictProxy

from services.gateway.capture import REDACTED
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from tests.gateway.helpers import stored_calls
from tests.stack import Stack, free_port

COMPANY = f"gw-proxy-{uuid.uuid4().hex[:8]}"
OTHER = f"{COMPANY}-other"
BIG = random.Random(5).randbytes(6 * 1024 * 1024)


@dataclass
class Upstream:
    """An API in the test's own event loop; gates let a test prove bodies stream through."""

    url: str = ""
    first_chunk_seen: asyncio.Event = field(default_factory=asyncio.Event)
    first_part_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/status/{code}", self.status)
        app.router.add_post("/echo", self.echo)
        app.router.add_get("/big", self.big)
        app.router.add_get("/stream", self.stream)
        app.router.add_post("/collect", self.collect)
        app.router.add_get("/gzip", self.gzipped)
        app.router.add_get("/headers", self.headers)
        app.router.add_post("/pessoas", self.pessoas)
        return app

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        headers = [("X-Custom", "one"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                   ("Cache-Control", "no-store")]
        if code in (301, 302):
            headers.append(("Location", "/elsewhere"))
        body = None if code in (204, 304) else f'{{"code": {code}}}'.encode()
        response = web.Response(status=code, body=body,
                                content_type=None if body is None else "application/json")
        for name, value in headers:
            response.headers.add(name, value)
        return response

    async def echo(self, request: web.Request) -> web.Response:
        data = await request.read()
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"X-Sha256": hashlib.sha256(data).hexdigest()})

    async def big(self, _: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first\n")
        await asyncio.wait_for(self.first_chunk_seen.wait(), 20)  # only once the client has it
        await response.write(b"second\n")
        await response.write_eof()
        return response

    async def collect(self, request: web.Request) -> web.Response:
        first = await request.content.readline()
        self.first_part_arrived.set()  # the client sends the rest only after this
        return web.Response(body=first + await request.content.read(), content_type="text/plain")

    async def gzipped(self, _: web.Request) -> web.Response:
        body = gzip.compress(b'{"Result": [{"Name": "JOSE"}], "Status": {"code": 0}}')
        return web.Response(body=body, headers={"Content-Type": "application/json",
                                                "Content-Encoding": "gzip"})

    async def headers(self, request: web.Request) -> web.Response:
        return web.json_response({k: v for k, v in request.headers.items()})

    async def pessoas(self, request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"Result": [{"Name": "ANA LIMA"}], "Status": {"code": 0}},
                                 headers={"X-Query-Id": "upstream-query-id-1"})


@dataclass
class Proxied:
    upstream: Upstream
    proxy_url: str
    metrics_url: str


@pytest.fixture(scope="module")
async def proxied(stack: Stack, gw_calls: Settings) -> AsyncIterator[Proxied]:
    upstream = Upstream()
    runner = web.AppRunner(upstream.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    upstream.url = f"http://127.0.0.1:{port}"
    listen = free_port()
    settings = replace(gw_calls, gateway_server_name="proxy-test", gateway_body_max_bytes=4096,
                       metrics_port=free_port())
    stack.spawn("gateway-gw", "gateway", "--upstream", upstream.url, "--listen", f"127.0.0.1:{listen}",
                "--company", COMPANY, "--name", "gw-proxy", settings=settings)
    try:
        if not await asyncio.to_thread(wait_for_port, "127.0.0.1", listen, 60):
            raise RuntimeError(f"gateway did not start:\n{stack.log('gateway-gw')}")
        yield Proxied(upstream, f"http://127.0.0.1:{listen}", f"http://127.0.0.1:{settings.metrics_port}/metrics")
    finally:
        stack.stop("gateway-gw")
        await runner.cleanup()


_PER_CONNECTION = {"date", "connection", "keep-alive", "transfer-encoding", "x-query-id"}


def _end_to_end(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in _PER_CONNECTION)


async def _both(http: aiohttp.ClientSession, p: Proxied, method: str, path: str,
                **kwargs: object) -> tuple[tuple[int, list, bytes], tuple[int, list, bytes], str]:
    """The same request straight to the upstream and through the proxy."""
    out = []
    query_id = ""
    for base in (p.upstream.url, p.proxy_url):
        async with http.request(method, base + path, allow_redirects=False, **kwargs) as answer:
            out.append((answer.status, _end_to_end(answer.headers), await answer.read()))
            query_id = answer.headers.get("X-Query-Id", "")
    return out[0], out[1], query_id


async def test_status_codes_headers_and_bodies_pass_through_unchanged(proxied: Proxied) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for method, path in [("GET", f"/status/{c}") for c in (200, 201, 204, 301, 404, 500, 503)] + [
                ("HEAD", "/status/200"), ("DELETE", "/status/202"), ("GET", "/big"), ("GET", "/gzip")]:
            direct, through, query_id = await _both(http, proxied, method, path)
            assert through == direct, f"{method} {path}"
            assert query_id, f"{method} {path}: no X-Query-Id"
        assert through[2][:2] == b"\x1f\x8b"  # /gzip came last: still compressed, passed through as is


async def test_large_bodies_pass_unchanged_both_ways(proxied: Proxied) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(proxied.proxy_url + "/echo", data=BIG) as answer:
            echoed = await answer.read()
            assert answer.headers["X-Sha256"] == hashlib.sha256(BIG).hexdigest()  # upstream got it whole
        assert echoed == BIG
        async with http.get(proxied.proxy_url + "/big") as answer:
            assert answer.headers["Content-Length"] == str(len(BIG))
            assert await answer.read() == BIG


async def test_bodies_stream_through_as_they_come(proxied: Proxied) -> None:
    upstream = proxied.upstream
    async with aiohttp.ClientSession() as http:
        async with http.get(proxied.proxy_url + "/stream") as answer:
            first = await asyncio.wait_for(answer.content.readline(), 20)  # before the upstream has finished
            upstream.first_chunk_seen.set()
            assert first + await answer.read() == b"first\nsecond\n"

        async def parts() -> AsyncIterator[bytes]:
            yield b"part-1\n"
            await asyncio.wait_for(upstream.first_part_arrived.wait(), 20)  # the upstream already has part 1
            yield b"part-2\n"

        async with http.post(proxied.proxy_url + "/collect", data=parts()) as answer:
            assert await answer.read() == b"part-1\npart-2\n"


async def test_hop_by_hop_headers_stop_at_the_proxy(proxied: Proxied) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "only-to-the-proxy", "X-End": "to-the-api",
                   "Authorization": "Bearer kept-for-the-api"}
        async with http.get(proxied.proxy_url + "/headers", headers=headers) as answer:
            seen = {k.lower(): v for k, v in (await answer.json()).items()}
    assert seen["x-end"] == "to-the-api" and seen["authorization"] == "Bearer kept-for-the-api"
    assert "x-hop" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["host"] == proxied.upstream.url.removeprefix("http://")


async def test_calls_through_the_proxy_arrive_in_clickhouse_with_every_field_right(
        proxied: Proxied, ch: AsyncClient) -> None:
    body = {"Datasets": "basic_data", "q": "doc{52998224725}", "AccessToken": "tok-999"}
    async with aiohttp.ClientSession() as http:
        async with http.post(proxied.proxy_url + "/pessoas?dataset=basic", json=body,
                             headers={"X-Trilha-Tag-Origem": "app"}) as answer:
            assert answer.status == 200
            pessoas_id = answer.headers["X-Query-Id"]
        async with http.get(proxied.proxy_url + "/status/404", headers={"X-Trilha-Company": OTHER}) as answer:
            missing_id = answer.headers["X-Query-Id"]  # a client naming another tenant: not believed
        async with http.get(proxied.proxy_url + "/gzip") as answer:
            gzip_id = answer.headers["X-Query-Id"]

    assert pessoas_id == "upstream-query-id-1"  # the upstream's QueryId is the record's
    rows = await stored_calls(ch, COMPANY, {pessoas_id, gzip_id, missing_id})
    pessoas, gzipped = rows[pessoas_id], rows[gzip_id]
    fields = ("company_id", "method", "resource", "status", "error", "ip", "server", "q", "tags",
              "schema_version")
    assert {k: pessoas[k] for k in fields} == {
        "company_id": COMPANY, "method": "POST", "resource": "pessoas", "status": 200, "error": False,
        "ip": "127.0.0.1", "server": "proxy-test", "q": "doc{52998224725}", "tags": {"origem": "app"},
        "schema_version": 1}
    assert pessoas["url"] == f"{proxied.proxy_url}/pessoas?dataset=basic"
    assert pessoas["request"] == {**body, "AccessToken": REDACTED}
    assert pessoas["result"] == {"Result": [{"Name": "ANA LIMA"}], "Status": {"code": 0}}
    assert 0 < pessoas["duration_ms"] < 10_000
    assert gzipped["result"] == {"Result": [{"Name": "JOSE"}], "Status": {"code": 0}}  # recorded decoded

    missing = rows[missing_id]  # the proxy's company, whatever the client's header said (issue 10)
    assert (missing["status"], missing["error"], missing["result"]) == (404, True, {"code": 404})
    assert await stored_calls(ch, OTHER, 0) == {}, "a client cannot file a call under another company"
    async with aiohttp.ClientSession() as http, http.get(proxied.metrics_url) as answer:
        ignored = re.search(r"trilha_gateway_company_header_ignored_total (\d+)", await answer.text())
    assert ignored and int(ignored.group(1)) >= 1, "the ignored header is counted"


async def test_a_company_header_counts_only_from_a_trusted_upstream(stack: Stack, gw_calls: Settings,
                                                                   ch: AsyncClient, proxied: Proxied) -> None:
    listen, named = free_port(), f"{COMPANY}-named"
    settings = replace(gw_calls, gateway_company_trusted="127.0.0.1/32")  # the test is the trusted upstream
    stack.spawn("gateway-gw-trusted", "gateway", "--upstream", proxied.upstream.url, "--listen",
                f"127.0.0.1:{listen}", "--company", f"{COMPANY}-default", "--name", "gw-proxy-trusted",
                settings=settings)
    try:
        assert await asyncio.to_thread(wait_for_port, "127.0.0.1", listen, 60), stack.log("gateway-gw-trusted")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{listen}/status/200",
                                                             headers={"X-Trilha-Company": named}) as answer:
            query_id = answer.headers["X-Query-Id"]
        assert (await stored_calls(ch, named, {query_id}))[query_id]["status"] == 200
    finally:
        stack.stop("gateway-gw-trusted")


async def test_an_unreachable_upstream_is_a_502_with_a_reason_and_a_record(stack: Stack, gw_calls: Settings,
                                                                          ch: AsyncClient) -> None:
    listen, company = free_port(), f"{COMPANY}-down"
    stack.spawn("gateway-gw-down", "gateway", "--upstream", f"http://127.0.0.1:{free_port()}", "--listen",
                f"127.0.0.1:{listen}", "--company", company, "--name", "gw-proxy-down", settings=gw_calls)
    try:
        assert await asyncio.to_thread(wait_for_port, "127.0.0.1", listen, 60), stack.log("gateway-gw-down")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{listen}/pessoas") as answer:
            assert answer.status == 502
            assert "upstream unreachable" in (await answer.json())["error"]
            query_id = answer.headers["X-Query-Id"]
        row = (await stored_calls(ch, company, {query_id}))[query_id]
        assert (row["status"], row["error"]) == (502, True)
        assert row["error_message"].startswith("upstream unreachable: ClientConnectorError")
    finally:
        stack.stop("gateway-gw-down")


async def test_the_proxy_reports_what_became_of_its_records(proxied: Proxied) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(proxied.proxy_url + "/status/200") as answer:
            assert answer.status == 200
        for _ in range(100):
            async with http.get(proxied.metrics_url) as answer:
                text = await answer.text()
            delivered = re.search(
                r'trilha_emitter_records_total\{emitter="gw-proxy",outcome="delivered"\} (\d+)', text)
            if delivered and int(delivered.group(1)) > 0:
                break
            await asyncio.sleep(0.1)
    assert delivered and int(delivered.group(1)) > 0, text
    assert 'trilha_emitter_records_total{emitter="gw-proxy",outcome="dropped"} 0' in text
    assert re.search(r'trilha_emitter_backlog\{emitter="gw-proxy"\} \d+', text)
