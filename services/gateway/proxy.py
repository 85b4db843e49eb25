"""`trilha gateway`: a recording reverse proxy, so an API in any language gets Trilha by standing behind it.

Every request is forwarded to the upstream as it arrives and the answer streamed back as it
comes: status, headers (minus hop-by-hop ones) and bodies pass through unchanged, compressed
bodies stay compressed. The recording middleware sees the exchange through what the handler
tees off the two streams (up to the body cap) and emits one record per call. The company is
`--company`; the company header (TRILHA_GATEWAY_COMPANY_HEADER) is believed only when the direct
peer is a trusted upstream (TRILHA_GATEWAY_COMPANY_TRUSTED), so a client cannot file calls under
another tenant by sending it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from services.gateway.capture import Captured
from services.gateway.emitter import Emitter
from services.gateway.emitter.spill import SpillBusy
from services.gateway.middleware import (
    ERROR_MESSAGE,
    REQUEST_BODY,
    RESULT_BODY,
    Recorder,
)
from services.gateway.recording import RecorderConfig, first_path_segment
from services.runtime import logs
from services.runtime.metrics import Registry
from services.runtime.netcheck import parse_hostport, require_kafka
from services.runtime.running import until_signalled
from services.runtime.settings import ConfigError, Settings

log = logs.get("trilha.gateway")

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade"))
_UPSTREAM: web.AppKey[Upstream] = web.AppKey("trilha_upstream")
_BODY_CAP: web.AppKey[int] = web.AppKey("trilha_body_cap")
_SMALL_BODY = 64 * 1024  # bodies of a known length up to this are relayed in one piece


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """Headers minus hop-by-hop ones, including any the Connection header names."""
    named = {token.strip().lower() for value in headers.getall(hdrs.CONNECTION, [])
             for token in value.split(",")}
    skip = HOP_BY_HOP | named
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in skip)


class Upstream:
    """The API behind the proxy: its base URL and one pooled, keep-alive client session."""

    def __init__(self, base: URL, timeout_s: float = 300) -> None:
        if not base.scheme.startswith("http") or not base.host:
            raise ConfigError(f"--upstream {base} is not an http(s) URL such as http://127.0.0.1:9000")
        self.base = base
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_s)
        self.session: aiohttp.ClientSession | None = None

    async def start(self, _: web.Application | None = None) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, enable_cleanup_closed=True)
        # Bodies pass through as they are: no decompression, no cookies kept, no default headers added.
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=self.timeout,
                                             cookie_jar=aiohttp.DummyCookieJar(),
                                             skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"))

    async def close(self, _: web.Application | None = None) -> None:
        if self.session is not None:
            await self.session.close()

    def url_for(self, request: web.Request) -> URL:
        """The upstream URL of a request: the base path, then the request's path and query as sent."""
        raw = request.rel_url.raw_path
        query = request.rel_url.raw_query_string
        return URL(f"{str(self.base).rstrip('/')}{raw}{'?' + query if query else ''}", encoded=True)


async def _request_stream(request: web.Request, captured: Captured) -> AsyncIterator[bytes]:
    """The client's body, chunk by chunk, as it arrives; the first bytes are kept for the record."""
    async for chunk in request.content.iter_any():
        captured.feed(chunk)
        yield chunk


def _forward_headers(request: web.Request, upstream: URL) -> CIMultiDict[str]:
    headers = _end_to_end(request.headers)
    headers[hdrs.HOST] = upstream.raw_authority
    peer = request.remote or ""
    prior = ", ".join(request.headers.getall(hdrs.X_FORWARDED_FOR, []))
    if peer:
        headers[hdrs.X_FORWARDED_FOR] = f"{prior}, {peer}" if prior else peer
    headers.setdefault(hdrs.X_FORWARDED_PROTO, request.scheme)
    if request.host:
        headers.setdefault(hdrs.X_FORWARDED_HOST, request.host)
    return headers


async def forward(request: web.Request) -> web.StreamResponse:
    """Send the request upstream and stream its answer back, teeing both bodies for the record.

    Bodies of a known length up to 64 KB (most API calls) are passed as one piece: one write
    each way instead of several, a measurable part of the latency the proxy adds. Anything larger
    or of unknown length streams chunk by chunk as it arrives.
    """
    upstream: Upstream = request.app[_UPSTREAM]
    assert upstream.session is not None
    cap = request.app[_BODY_CAP]
    target = upstream.url_for(request)
    sent = Captured(content_type=request.headers.get(hdrs.CONTENT_TYPE, ""),
                    encoding=request.headers.get(hdrs.CONTENT_ENCODING, ""), cap=cap)
    request[REQUEST_BODY] = sent
    body: bytes | AsyncIterator[bytes] | None = None
    if request.body_exists:
        length = request.content_length
        if length is not None and length <= _SMALL_BODY:
            body = await request.read()
            sent.feed(body)
        else:
            body = _request_stream(request, sent)
    response = web.StreamResponse()
    try:
        async with upstream.session.request(request.method, target, headers=_forward_headers(request, target),
                                            data=body, allow_redirects=False) as answer:
            got = Captured(content_type=answer.headers.get(hdrs.CONTENT_TYPE, ""),
                           encoding=answer.headers.get(hdrs.CONTENT_ENCODING, ""), cap=cap)
            request[RESULT_BODY] = got
            headers = _end_to_end(answer.headers)
            bodiless = request.method == "HEAD" or answer.status in (204, 304) or answer.status < 200
            length = answer.content_length
            if not bodiless and length is not None and length <= _SMALL_BODY:
                data = await answer.read()
                got.feed(data)
                return web.Response(status=answer.status, reason=answer.reason, headers=headers, body=data)
            response = web.StreamResponse(status=answer.status, reason=answer.reason, headers=headers)
            await _relay(request, answer, response, got, bodiless)
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        if response.prepared:  # the answer broke off midway: all we can do is cut the connection too
            request[ERROR_MESSAGE] = f"upstream answer broke off: {type(exc).__name__}: {exc}"
            raise
        return _bad_gateway(request, exc)


async def _relay(request: web.Request, answer: aiohttp.ClientResponse, response: web.StreamResponse,
                 got: Captured, bodiless: bool) -> None:
    if hdrs.CONTENT_LENGTH not in answer.headers and not bodiless:
        response.enable_chunked_encoding()
    await response.prepare(request)
    if not bodiless:
        async for chunk in answer.content.iter_any():
            got.feed(chunk)
            await response.write(chunk)
    await response.write_eof()


def _bad_gateway(request: web.Request, exc: BaseException) -> web.Response:
    """The upstream did not answer: 502 (504 on a timeout) with a JSON message; the record says why."""
    timeout = isinstance(exc, TimeoutError)
    status = 504 if timeout else 502
    reason = f"upstream {'timed out' if timeout else 'unreachable'}: {type(exc).__name__}: {exc}"
    request[ERROR_MESSAGE] = reason
    log.warning("upstream failed", status=status, error=reason, path=request.path)
    return web.json_response({"error": reason}, status=status)


def build_app(upstream: Upstream, recorder: Recorder) -> web.Application:
    """The proxy as an aiohttp application (tests and embedders can run it in their own loop)."""
    recorder.config = replace(recorder.config, prefetch_body=False)  # the handler tees bodies as they stream
    app = web.Application(client_max_size=1024 ** 4)
    app[_UPSTREAM] = upstream
    app[_BODY_CAP] = recorder.config.body_max_bytes
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(upstream.start)
    app.on_cleanup.append(upstream.close)
    return recorder.install(app)


# -- the command ----------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", required=True, help="base URL of the API behind the proxy")
    parser.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT to accept clients on")
    parser.add_argument("--company", help="company of the calls (a company header counts only from an upstream "
                                          "in TRILHA_GATEWAY_COMPANY_TRUSTED)")
    parser.add_argument("--name", default="gateway", help="emitter name (its spill file under the data dir)")


def command(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(settings.log_level, settings.log_format, component="gateway")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the emitter reports outages itself
    host, port = parse_hostport(args.listen, 8000)
    upstream = Upstream(URL(args.upstream))
    config = RecorderConfig.from_settings(settings, default_company=args.company, resource=first_path_segment,
                                          prefetch_body=False)
    asyncio.run(_serve(settings, upstream, config, host, port, args.name))
    return 0


async def _serve(settings: Settings, upstream: Upstream, config: RecorderConfig, host: str, port: int,
                 name: str) -> None:
    if not config.default_company and not config.company_trusted:
        raise ConfigError("--company is required (or TRILHA_GATEWAY_COMPANY_TRUSTED naming the upstream proxies "
                          f"that set {config.company_header}): otherwise no call has a company to be recorded under")
    if not config.default_company:
        log.warning(f"no --company: calls without a {config.company_header} header from a trusted upstream are "
                    "counted as invalid, not recorded")
    await require_kafka(settings)
    try:
        emitter = await Emitter(settings, name=name).start()
    except SpillBusy as exc:
        raise ConfigError(f"{exc}: give this gateway its own --name") from None
    recorder = Recorder(emitter, config)
    app = build_app(upstream, recorder)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False, handle_signals=False)
    await runner.setup()
    registry = Registry()
    emitter.register_metrics(registry)
    recorder.register_metrics(registry)
    try:
        try:
            await web.TCPSite(runner, host, port, backlog=1024).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} (--listen): {exc.strerror}") from None
        async with until_signalled(settings, registry, log, host=host) as stop:
            log.info("gateway ready", listen=f"{host}:{port}", upstream=str(upstream.base), topic=emitter.topic)
            await stop.wait()
    finally:
        await runner.cleanup()  # stops accepting, lets requests in flight finish (and be recorded)
        await emitter.close()

