"""Sorting an HTTP request's URL parameters the way ClickHouse's HTTP handler does.

clickhouse-connect sends real query settings (`max_execution_time`, `insert_deduplication_token`,
...) next to parameters only the HTTP layer understands (`session_id`, `wait_end_of_query`,
`enable_http_compression`, ...) and bind values (`param_x`). chDB has no per-call settings, so real
settings are applied with `SET` on the request's connection; transport parameters must never reach
it (it would reject them as unknown settings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.embedded.ch_errors import (
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    SESSION_NOT_FOUND,
    UNKNOWN_SETTING,
    ChError,
)

# Parameters ClickHouse's HTTP handler consumes itself: never applied with SET.
TRANSPORT_PARAMS = frozenset({
    "query", "wait_end_of_query", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "enable_http_compression", "client_protocol_version",
    "session_id", "session_timeout", "session_check", "query_id", "database", "default_format", "role",
    "quota_key", "compress", "decompress", "buffer_size", "user", "password", "stacktrace",
    "http_response_buffer_size", "http_wait_end_of_query", "http_zlib_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
})
# Settings whose value is unique to one request: a connection carrying them is never pooled.
ONE_SHOT_SETTINGS = frozenset({"insert_deduplication_token"})

DEFAULT_SESSION_TIMEOUT = 60.0
MAX_SESSION_TIMEOUT = 3600.0

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = frozenset({"1", "true", "True", "TRUE"})


@dataclass
class RequestOptions:
    """What one request asks for, beyond its SQL."""

    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)  # bind values, without "param_"
    query: str = ""  # the `query` URL parameter
    database: str | None = None
    default_format: str | None = None
    query_id: str | None = None
    session_id: str | None = None
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    session_check: bool = False
    wait_end_of_query: bool = False  # the client reads the whole result anyway: no need to stream it

    @property
    def pool_key(self) -> tuple[str | None, tuple[tuple[str, str], ...]]:
        """Requests with equal keys can share a pooled connection: same database, same settings."""
        return self.database, tuple(sorted(self.settings.items()))

    @property
    def one_shot(self) -> bool:
        return any(name in self.settings for name in ONE_SHOT_SETTINGS)


def parse(params: Mapping[str, str]) -> RequestOptions:
    """Classify URL (or form) parameters; raises ChError for a malformed name or value."""
    options = RequestOptions()
    for name, value in params.items():
        if name.startswith("param_"):
            options.query_params[name[6:]] = value
        elif name not in TRANSPORT_PARAMS:
            if not _SETTING_NAME.match(name):
                raise ChError.make(UNKNOWN_SETTING, f"Unknown setting '{name}'")
            options.settings[name] = value
    options.query = params.get("query", "")
    options.database = params.get("database") or None
    options.default_format = params.get("default_format") or None
    options.query_id = params.get("query_id") or None
    options.session_id = params.get("session_id") or None
    options.session_check = params.get("session_check", "0") in _TRUE
    options.wait_end_of_query = params.get("wait_end_of_query", "0") in _TRUE
    if options.database is not None and not _IDENTIFIER.match(options.database):
        raise ChError.make(BAD_ARGUMENTS, f"Invalid database name '{options.database}'")
    if "session_timeout" in params:
        options.session_timeout = _session_timeout(params["session_timeout"])
    if params.get("compress", "0") in _TRUE or params.get("decompress", "0") in _TRUE:
        raise ChError.make(NOT_IMPLEMENTED, "ClickHouse's native compression (compress/decompress) is not "
                                            "supported; use Content-Encoding")
    return options


def _session_timeout(value: str) -> float:
    try:
        timeout = float(value)
    except ValueError:
        raise ChError.make(BAD_ARGUMENTS, f"Invalid session timeout: '{value}'") from None
    if not 0 < timeout <= MAX_SESSION_TIMEOUT:
        limit = f"(0, {MAX_SESSION_TIMEOUT:.0f}]"
        raise ChError.make(BAD_ARGUMENTS, f"Session timeout '{value}' is out of range {limit}")
    return timeout


def session_missing(session_id: str) -> ChError:
    return ChError.make(SESSION_NOT_FOUND, f"Session {session_id} not found")


def quote(value: str) -> str:
    """A SQL string literal; ClickHouse converts it to the setting's type (numbers, bools, ...)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def set_statement(changes: Mapping[str, str | None]) -> str:
    """One `SET` for all changes (None means back to the default); `readonly` goes last so it
    cannot forbid the changes listed with it."""
    names = sorted(changes, key=lambda name: (name == "readonly", name))
    parts = [f"{name} = DEFAULT" if changes[name] is None else f"{name} = {quote(str(changes[name]))}"
             for name in names]
    return "SET " + ", ".join(parts)
