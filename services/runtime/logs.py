"""Structured logs for every process, one event per line, never a secret."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# The one list of words that mark a name as holding a secret: a log field here, a header, query
# parameter or body member in the gateway's records (TRILHA_GATEWAY_REDACT's default).
SECRET_WORDS = ("authorization", "password", "senha", "token", "secret", "apikey", "cookie")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: a field named like a secret (`cursor_secret`, `access-token`) is never written out."""
    for key in event:
        folded = key.lower().replace("-", "").replace("_", "")
        if any(word in folded for word in SECRET_WORDS):
            event[key] = "[redacted]"
    return event


def configure(level: str = "info", fmt: str = "console", component: str | None = None) -> None:
    """Configure structlog once per process; `component` tags every line with the process's role."""
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(
        colors=False)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    if component:
        structlog.contextvars.bind_contextvars(component=component)


def get(name: str) -> Any:
    return structlog.get_logger(name)
