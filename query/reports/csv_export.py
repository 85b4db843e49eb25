"""The report as CSV: every matching row, streamed from ClickHouse to the caller in constant memory.

ClickHouse renders the rows (dates in the request's zone, IPv4 as a.b.c.d, Sim/Não, decimal comma
for Portuguese) and writes RFC 4180 CSV itself; this module only writes the byte-order mark and
the header, then relays the engine's chunks as they arrive. The query service never holds more
than a chunk, so exporting ten million rows costs what exporting ten does, and the engine's
writer is far faster than formatting rows in Python.

Defaults open correctly in a spreadsheet set to Brazilian Portuguese: `;` separates fields (the
comma is the decimal separator there) and a UTF-8 BOM makes accents show as accents.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.tenant import TenantScope
from query.errors import BadRequest, shown
from query.reports import sql
from query.reports.fields import labels, word
from query.reports.filters import ReportFilter, View
from services.runtime.settings import yes_no

BOM = "\ufeff".encode()
SEPARATORS = {";": ";", ",": ",", "tab": "\t", "\t": "\t", "|": "|"}
CONTENT_TYPE = "text/csv; charset=utf-8; header=present"


@dataclass(frozen=True)
class CsvOptions:
    """`sep` (; , tab or |, default ;) and `bom` (default yes)."""

    sep: str = ";"
    bom: bool = True


def parse_options(params: Mapping[str, Any]) -> CsvOptions:
    sep_text, bom_text = params.get("sep"), params.get("bom")
    sep = ";"
    if sep_text not in (None, ""):
        sep = SEPARATORS.get(str(sep_text).lower()) or ""
        if not sep:
            raise BadRequest(f"sep must be one of ; , | or tab, not {shown(sep_text)}", "sep")
    bom = True
    if bom_text not in (None, ""):
        answer = bom_text if isinstance(bom_text, bool) else yes_no(str(bom_text))
        if answer is None:
            raise BadRequest(f"bom must be true or false, not {shown(bom_text)}", "bom")
        bom = answer
    return CsvOptions(sep, bom)


def header(lang: str, options: CsvOptions) -> bytes:
    """The optional BOM and the labels row, quoted like the rows that follow (CRLF line end)."""
    out = io.StringIO()
    csv.writer(out, delimiter=options.sep, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerow(labels(lang))
    return (BOM if options.bom else b"") + out.getvalue().encode()


def file_name(lang: str, moment: datetime) -> str:
    return f"{word('file_name', lang)}_{moment.strftime('%Y-%m-%d_%H%M')}.csv"


async def stream(ch: AsyncClient, flt: ReportFilter, scope: TenantScope, view: View,
                 options: CsvOptions) -> AsyncIterator[bytes]:
    """Header, then the engine's CSV chunks as they arrive; closing the iterator cancels the query.

    The query is started before the header is yielded, so a caller that takes the first chunk
    before answering still turns a failing query into an error response instead of a cut file.
    """
    stmt = sql.rendered(scope, flt, view.lang, view.tz.key)
    settings = {"format_csv_delimiter": options.sep, "output_format_csv_crlf_end_of_line": 1,
                "max_execution_time": 0, "max_threads": 1}  # one core: an export is never short of time,
    #                                                         the other companies' lookups are
    source = await tenant.raw_stream(ch, stmt, settings, fmt="CSV")
    async with source:
        yield header(view.lang, options)
        async for chunk in source:
            yield chunk
