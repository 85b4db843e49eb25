"""Data shapes, kept once as data files and loaded by the code that needs them.

The call-record contract (JSON Schema), the ClickHouse migrations and the query service's
OpenAPI document live beside this module; nothing else in the repository restates them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

_ROOT = resources.files(__name__)


@cache
def call_record_schema(version: int = 1) -> dict[str, Any]:
    """The JSON Schema of one call record; cached because validators are compiled from it once."""
    return json.loads(_ROOT.joinpath(f"call_record.v{version}.json").read_text(encoding="utf-8"))


def clickhouse_migrations() -> list[tuple[str, str]]:
    """Ordered (name, sql) pairs; the file name's numeric prefix is the order and the identity."""
    folder = _ROOT.joinpath("clickhouse")
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def read_text(name: str) -> str:
    """Any other data file kept here (e.g. the OpenAPI document)."""
    return _ROOT.joinpath(name).read_text(encoding="utf-8")
