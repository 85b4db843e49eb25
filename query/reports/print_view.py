"""The printable report: an HTML page with a print stylesheet, the filters applied, when it was
generated, and the newest rows up to a limit (a note says when the limit cut the list short).

Every value, label and filter the user typed is HTML-escaped; the page carries no script, and the
handler serves it with a Content-Security-Policy that forbids any, so a hostile client name in a
record cannot run in the operator's browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from query.access.tenant import TenantScope
from query.calls import newest, records
from query.calls.keyset import Key
from query.reports import sql
from query.reports.fields import fields, filter_label, word
from query.reports.filters import FILTER_NAMES, ReportFilter, View

PRINT_LIMIT = 1000
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body { font: 12px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #111; margin: 1.5rem; }
h1 { font-size: 18px; margin: 0 0 .4rem; }
.meta { color: #444; margin: 0 0 .8rem; }
.meta dt { font-weight: 600; display: inline; }
.meta dd { display: inline; margin: 0 1rem 0 .25rem; }
.note { border: 1px solid #b45309; background: #fffbeb; padding: .4rem .6rem; margin: .6rem 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.url { word-break: break-all; }
td.num { text-align: right; white-space: nowrap; }
tr { page-break-inside: avoid; }
thead { display: table-header-group; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { margin: 0; font-size: 9px; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .note { break-inside: avoid; }
}
"""


async def newest_rows(ch: Any, tenant: TenantScope, flt: ReportFilter, view: View,
                      limit: int = PRINT_LIMIT + 1) -> list[list[str]]:
    """Up to `limit` rows newest first, each record once, each column as the CSV shows it."""
    async def read(count: int, after: Key | None) -> list[list[Any]]:
        statement = sql.rendered_page(tenant, flt, view.lang, view.tz.key, count, after)
        return await records.compact_rows(ch, statement, sql.READ_SETTINGS)

    return [row[:-2] for row in await newest.rows(read, lambda row: Key(row[-2], row[-1]), limit)]


def render(rows: Sequence[Sequence[str]], applied: Mapping[str, str], view: View, generated: datetime,
           limit: int = PRINT_LIMIT) -> str:
    """The page for `rows` (already rendered text, newest first; more than `limit` means cut)."""
    lang = view.lang
    cut = len(rows) > limit
    shown = rows[:limit]
    parts = [
        f'<!DOCTYPE html>\n<html lang="{"pt-BR" if lang == "pt" else "en"}"><head><meta charset="utf-8">',
        f"<title>{escape(word('title', lang))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(word('title', lang))}</h1>",
        _meta(applied, view, generated, len(shown)),
    ]
    if cut:
        parts.append(f'<p class="note" role="note">{escape(word("limit_note", lang).format(limit=limit))}</p>')
    parts.append(_table(shown, lang))
    parts.append("</body></html>\n")
    return "".join(parts)


def _meta(applied: Mapping[str, str], view: View, generated: datetime, count: int) -> str:
    lang = view.lang
    items = [(filter_label(k, lang), applied[k]) for k in FILTER_NAMES if applied.get(k, "").strip()]
    filters = "; ".join(f"{escape(label)}: {escape(value.strip())}" for label, value in items)
    local = generated.astimezone(view.tz).strftime("%d/%m/%Y %H:%M:%S")
    return (
        '<dl class="meta">'
        f"<div><dt>{escape(word('filters', lang))}:</dt><dd>{filters or escape(word('no_filters', lang))}</dd></div>"
        f"<div><dt>{escape(word('generated_at', lang))}:</dt><dd>{escape(local)}</dd>"
        f"<dt>{escape(word('time_zone', lang))}:</dt><dd>{escape(view.tz.key)}</dd>"
        f"<dt>{escape(word('rows_shown', lang))}:</dt><dd>{count}</dd></div></dl>"
    )


def _table(rows: Sequence[Sequence[str]], lang: str) -> str:
    columns = fields()
    head = "".join(f"<th>{escape(f.label(lang))}</th>" for f in columns)
    if not rows:
        return f'<table><thead><tr>{head}</tr></thead></table><p>{escape(word("no_rows", lang))}</p>'
    classes = ["url" if f.key == "url" else "num" if f.kind in {"status", "duration"} else "" for f in columns]
    body = "".join(
        "<tr>" + "".join(f'<td class="{c}">{escape(v)}</td>' if c else f"<td>{escape(v)}</td>"
                         for c, v in zip(classes, row, strict=True)) + "</tr>\n"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"
