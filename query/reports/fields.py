"""The report's columns, labels and words, read from `schemas/report_api_logs.json`.

Order and labels are product data (the seed's screen), not code: changing a label or adding a
language is an edit of that file, and the JSON page, the CSV and the print view all follow it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas import read_text

LANGUAGES = ("pt", "en")


@dataclass(frozen=True)
class Field:
    """One report column: its JSON key, how it renders, and its label per language."""

    key: str
    kind: str
    sources: tuple[str, ...]
    labels: dict[str, str]

    def label(self, lang: str) -> str:
        return self.labels[lang]


@cache
def _document() -> dict[str, Any]:
    return json.loads(read_text("report_api_logs.json"))


@cache
def fields() -> tuple[Field, ...]:
    """The columns in display order (Código … Data/Hora)."""
    return tuple(Field(f["key"], f["kind"], tuple(f["sources"]), dict(f["label"])) for f in _document()["fields"])


def labels(lang: str) -> list[str]:
    """Header labels in `lang`, in column order."""
    return [f.label(lang) for f in fields()]


def word(name: str, lang: str) -> str:
    """A fixed word of the report (Sim/Não, titles, notes) in `lang`."""
    return _document()["words"][name][lang]


def filter_label(key: str, lang: str) -> str:
    """The search-field label the print view shows next to an applied filter."""
    for item in _document()["filters"]:
        if item["key"] == key:
            return item["label"][lang]
    return key
