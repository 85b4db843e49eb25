"""The printable report: a print stylesheet, the filters applied, the generation time, the rows
(escaped: a record cannot inject markup), and a note when the print limit cuts the list short."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.reports.print_view import PRINT_LIMIT
from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.stack import Stack

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <b>Ana</b>'

NAME = "query-report-print"  # the `trilha query` process these tests use (its log: <data_dir>/NAME.log)



@pytest.fixture(scope="module")
async def data(stack: Stack, ch: AsyncClient) -> AsyncIterator[rs.Data]:
    mine = rs.company("rep-print")
    records = RecordFactory(seed=71, companies=1, result_bytes=(10, 20)).records(
        PRINT_LIMIT + 25, start=START, step=timedelta(seconds=30), company=mine)
    records[-1].update(client_name=HOSTILE, resource="pessoas")
    await rs.insert(ch, records)
    async with rs.serving(stack, NAME, mine, records) as served:
        yield served


async def _page(data: rs.Data, **params: str) -> tuple[str, dict[str, str]]:
    async with data.session.get(f"{data.base}/reports/api-logs/print", params=params,
                                headers=data.headers) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.text(), dict(answer.headers)


async def test_print_page_lists_filters_time_and_matching_rows(data: rs.Data) -> None:
    before = datetime.now(UTC)
    html, headers = await _page(data, resource="pessoas", error="não", client="ana")
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in \
        headers["Content-Security-Policy"]
    assert "@media print" in html and "@page" in html
    assert "Filtros aplicados" in html and "Recurso: pessoas" in html and "Erro: não" in html
    assert "Cliente: ana" in html
    generated = re.search(r"Gerado em:</dt><dd>(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", html)
    assert generated, "the generation time is on the page"
    shown = datetime.strptime(generated.group(1), "%d/%m/%Y %H:%M:%S").replace(tzinfo=ZoneInfo("America/Sao_Paulo"))
    assert before - timedelta(seconds=2) <= shown <= datetime.now(UTC) + timedelta(seconds=2)

    table = rs.HtmlTable()
    table.feed(html)
    want = [r for r in data.records if r["resource"] == "pessoas" and not r["error"]
            and "ana" in rs.fold(f"{r['client_name']} {r['client_username']}")]
    assert want
    header, *rows = table.rows
    assert header[0] == "Código" and header[-1] == "Data/Hora"
    assert [r[0] for r in rows] == rs.newest_first(want)
    assert "Limite de impressão" not in html


async def test_values_are_escaped_never_markup(data: rs.Data) -> None:
    html, _ = await _page(data, client="script")
    table = rs.HtmlTable()
    table.feed(html)
    assert table.scripts == 0, "a client name cannot add a script to the page"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert table.rows[1][2].startswith(HOSTILE)


async def test_the_print_limit_is_stated_when_reached(data: rs.Data) -> None:
    html, _ = await _page(data, lang="en")
    table = rs.HtmlTable()
    table.feed(html)
    assert len(table.rows) - 1 == PRINT_LIMIT
    assert [r[0] for r in table.rows[1:]] == rs.newest_first(data.records)[:PRINT_LIMIT]
    assert f"showing only the {PRINT_LIMIT} most recent records" in html
    assert "None (every record)" in html and "Generated at" in html
