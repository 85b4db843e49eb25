"""The embedded ClickHouse HTTP endpoint: chDB (the ClickHouse engine, in-process) behind enough of
ClickHouse's HTTP interface that clickhouse-connect (`get_client` and `get_async_client`) works
against it unchanged, so the rest of Trilha talks to one kind of server in every deployment.

Requests: `GET /ping` and `GET /` answer `Ok.`; `POST /` runs the SQL in the `query` parameter
and/or the (optionally compressed) body, inserts streaming in; `GET /?query=` runs read-only SQL.
URL parameters are split into settings, bind parameters and transport options (ch_settings); a
`session_id` pins a connection (ch_sessions); results stream out (ch_query). Errors come back as
ClickHouse formats them (ch_errors), never as a Python traceback.

Run: `python -m services.embedded.clickhouse_endpoint --data-dir DIR [--host H] [--port P]`.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import StreamReader, hdrs, web

from services.embedded import ch_formats, ch_settings, ch_sql
from services.embedded.ch_body import Insert, RequestBody
from services.embedded.ch_engine import Engine, Lease
from services.embedded.ch_errors import NOT_IMPLEMENTED, READONLY, ChError, from_exception
from services.embedded.ch_http_codec import decoder
from services.embedded.ch_insert import stream_insert
from services.embedded.ch_query import Statement, respond, summary_header

ENGINE = web.AppKey("engine", Engine)
MAX_FORM_BYTES = 256 * 1024 * 1024  # multipart/form-data requests (queries with large bind values)
_SERVER_OPTIONS: dict[str, Any] = {
    "auto_decompress": False,  # bodies are lz4/zstd/gzip... frames that ch_http_codec decodes itself
    "max_line_size": 1024 * 1024,  # ClickHouse accepts 1 MiB URLs (long `query` parameters)
    "max_field_size": 64 * 1024,
    "access_log": None,
}
_READ_ONLY_CLASS = 0  # chDB's classify_query: query_class.READ_ONLY

log = logging.getLogger(__name__)


def build_app(data_dir: str, max_concurrency: int = 4) -> web.Application:
    """The endpoint as an aiohttp application owning one chDB engine on `data_dir`.

    Serve it with `make_runner` (or the same options): the server must not decompress bodies.
    """
    app = web.Application(client_max_size=MAX_FORM_BYTES)
    engine = Engine(data_dir, max_concurrency)
    app[ENGINE] = engine

    async def engine_lifetime(_: web.Application) -> AsyncIterator[None]:
        await engine.start()
        yield
        await engine.close()

    app.cleanup_ctx.append(engine_lifetime)
    app.router.add_get("/ping", _ok)
    app.router.add_get("/", _get)
    app.router.add_post("/", _post)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """A runner with the server options the endpoint needs (above all: no body decompression)."""
    return web.AppRunner(app, shutdown_timeout=10.0, **_SERVER_OPTIONS)


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="Ok.\n")


async def _get(request: web.Request) -> web.StreamResponse:
    if "query" not in request.query:
        return await _ok(request)
    return await _handle(request, read_only=True)


async def _post(request: web.Request) -> web.StreamResponse:
    return await _handle(request, read_only=False)


async def _handle(request: web.Request, read_only: bool) -> web.StreamResponse:
    engine = request.app[ENGINE]
    headers = {
        "X-ClickHouse-Query-Id": request.query.get("query_id") or str(uuid.uuid4()),
        "X-ClickHouse-Timezone": engine.timezone,
        "X-ClickHouse-Server-Display-Name": "trilha-chdb",
    }
    try:
        params, content = await _params_and_content(request)
        options = ch_settings.parse(params)
        headers["X-ClickHouse-Timezone"] = options.settings.get("session_timezone") or engine.timezone
        body = RequestBody(content, decoder(request.headers.get(hdrs.CONTENT_ENCODING)), options.query)
        what = await body.classify()
        if isinstance(what, Insert) and read_only:
            raise _readonly_error()
        lease = await engine.lease(options)
        if isinstance(what, Insert):
            return await _insert(lease, what, body, headers)
        return await _query(request, lease, what.sql, options, headers, read_only)
    except Exception as exc:
        return _error_response(exc, headers, engine.version)


async def _params_and_content(request: web.Request) -> tuple[dict[str, str], StreamReader | None]:
    """URL parameters (plus form fields of a multipart request) and the body stream, if any."""
    params = dict(request.query)
    if request.method == hdrs.METH_GET:
        return params, None
    if request.content_type == "multipart/form-data":
        for name, value in (await request.post()).items():
            if not isinstance(value, str):
                raise ChError.make(NOT_IMPLEMENTED, "External data (temporary tables sent with the query) "
                                                    "is not supported by the embedded endpoint")
            params[name] = value
        return params, None
    return params, request.content


async def _insert(lease: Lease, insert: Insert, body: RequestBody, headers: dict[str, str]) -> web.Response:
    try:
        summary = await stream_insert(lease, insert, body)
    except BaseException:
        await lease.release(clean=False)
        raise
    await lease.release(clean=True)
    return web.Response(headers={**headers, **summary_header(summary)})


async def _query(request: web.Request, lease: Lease, sql: str, options: ch_settings.RequestOptions,
                 headers: dict[str, str], read_only: bool) -> web.StreamResponse:
    try:
        if read_only:
            await _check_read_only(lease, sql)
    except BaseException:
        await lease.release(clean=True)
        raise
    explicit = ch_sql.output_format(sql)
    fmt = explicit or options.default_format or "TabSeparated"
    has_result = explicit is not None or ch_sql.returns_result(sql)
    if has_result:
        headers = {**headers, "X-ClickHouse-Format": fmt, hdrs.CONTENT_TYPE: ch_formats.content_type(fmt)}
    # With wait_end_of_query the client reads the whole result before using it (clickhouse-connect's
    # query()): one chDB call then beats streaming, which costs two more round trips into chDB.
    streams = ch_sql.is_select(sql) and ch_formats.streamable(fmt, options.settings)
    statement = Statement(sql, fmt, options.query_params, stream=streams and not options.wait_end_of_query)
    return await respond(request, lease, statement, headers, clean=not ch_sql.leaves_state(sql))


async def _check_read_only(lease: Lease, sql: str) -> None:
    """GET implies readonly, as in ClickHouse: only statements that change nothing may run."""
    info = await lease.engine.run(lease.conn.classify_query, sql)
    if int(info["query_class"]) != _READ_ONLY_CLASS:
        raise _readonly_error()


def _readonly_error() -> ChError:
    return ChError.make(READONLY, "Cannot execute query in readonly mode. For queries over HTTP, method GET "
                                  "implies readonly. You should use method POST for modifying queries")


def _error_response(exc: Exception, headers: dict[str, str], version: str) -> web.Response:
    error = from_exception(exc)
    if not isinstance(exc, (ChError, RuntimeError)):
        log.exception("unexpected failure handling a request")  # to stderr, never to the client
    headers = {**headers, "X-ClickHouse-Exception-Code": str(error.code),
               hdrs.CONTENT_TYPE: "text/plain; charset=UTF-8"}
    return web.Response(status=error.http_status, body=error.body(version), headers=headers)


def serve(host: str, port: int, data_dir: str) -> None:
    """Serve until SIGTERM/SIGINT.

    Raises OSError if the address is taken: the port is bound before the engine opens, so nothing
    has touched the data directory then. Raises RuntimeError if chDB cannot open the directory
    (e.g. another process serves it: chDB locks it).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    try:
        asyncio.run(_serve(sock, host, port, data_dir))
    finally:
        sock.close()


async def _serve(sock: socket.socket, host: str, port: int, data_dir: str) -> None:
    runner = make_runner(build_app(data_dir))
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print(f"clickhouse endpoint listening on http://{host}:{port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded ClickHouse HTTP endpoint (chDB).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--data-dir", required=True, help="where the ClickHouse data lives")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(args.host, args.port, args.data_dir)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"clickhouse endpoint: {args.host}:{args.port} is already in use", file=sys.stderr)
        else:
            print(f"clickhouse endpoint: cannot start: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # chDB could not open the data directory
        print(f"clickhouse endpoint: cannot open {args.data_dir}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
