"""The CSV export: every matching row (not a page), read back with Python's csv module exactly as
a spreadsheet would read it — separators, quotes, line breaks and accents inside values intact,
dates as DD/MM/AAAA HH:MM in the chosen zone, labels in Portuguese or English."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.stack import Stack

START = datetime(2026, 2, 27, 23, 50, tzinfo=UTC)
PT_HEADER = ["Código", "Client ID", "Cliente", "ID da autorização", "Autorização", "IP", "Recurso", "Evento",
             "Método", "Status", "URL", "Server", "Erro", "Tempo (ms)", "Data/Hora"]
EN_HEADER = ["Code", "Client ID", "Client", "Authorization ID", "Authorization", "IP", "Resource", "Event",
             "Method", "Status", "URL", "Server", "Error", "Time (ms)", "Date/Time"]
TRICKY = {
    "client_name": 'Silva, "Zé" & Cia;\nConceição Ltda',
    "client_username": "zé.çã",
    "authorization_name": 'Integração "ERP"; filial, SP\r\nsegunda linha',
    "url": 'https://api.example.com/x?q="a;b",c&n=ã',
    "server": "=HYPERLINK(\"http://evil\")",
}

NAME = "query-report-csv"  # the `trilha query` process these tests use (its log: <data_dir>/NAME.log)



@pytest.fixture(scope="module")
async def data(stack: Stack, ch: AsyncClient) -> AsyncIterator[rs.Data]:
    mine = rs.company("rep-csv")
    records = RecordFactory(seed=61, companies=1).records(150, start=START, step=timedelta(seconds=41),
                                                          company=mine)
    records[10].update(TRICKY)
    records[11].update(ip="2001:db8::7", duration_ms=1234.5)
    records[12].update(ip="189.4.5.6", duration_ms=0.25)
    await rs.insert(ch, records)
    await rs.insert(ch, records[:30])  # duplicates not merged yet must not become extra lines
    async with rs.serving(stack, NAME, mine, records) as served:
        yield served


async def _csv(data: rs.Data, **params: str) -> tuple[bytes, list[list[str]], dict[str, str]]:
    async with data.session.get(f"{data.base}/reports/api-logs.csv", params=params, headers=data.headers) as answer:
        assert answer.status == 200, await answer.text()
        raw = await answer.read()
        headers = dict(answer.headers)
    sep = {"tab": "\t"}.get(params.get("sep", ";"), params.get("sep", ";"))
    text = raw.decode("utf-8-sig")
    return raw, list(csv.reader(io.StringIO(text, newline=""), delimiter=sep)), headers


async def test_every_matching_row_with_portuguese_defaults(data: rs.Data) -> None:
    raw, rows, headers = await _csv(data)
    assert raw.startswith("\ufeff".encode()), "a UTF-8 BOM by default, so a pt-BR spreadsheet shows accents"
    assert headers["Content-Type"].startswith("text/csv") and "attachment" in headers["Content-Disposition"]
    assert rows[0] == PT_HEADER
    assert [r[0] for r in rows[1:]] == rs.newest_first(data.records), "all 150 rows, newest first, each once"
    assert all(len(r) == 15 for r in rows)


async def test_values_with_separators_quotes_newlines_and_accents_survive(data: rs.Data) -> None:
    _, rows, _ = await _csv(data)
    by_id = {r[0]: r for r in rows[1:]}
    tricky = by_id[data.records[10]["query_id"]]
    assert tricky[2] == f"{TRICKY['client_name']} ({TRICKY['client_username']})"
    assert tricky[4] == TRICKY["authorization_name"]
    assert tricky[10] == TRICKY["url"]
    assert tricky[11] == "'" + TRICKY["server"], "a formula is neutralised so a spreadsheet shows it as text"
    _, comma_rows, _ = await _csv(data, sep=",", bom="false")
    assert {r[0]: r for r in comma_rows[1:]}[data.records[10]["query_id"]] == tricky


async def test_dates_ips_booleans_and_durations_as_a_person_reads_them(data: rs.Data) -> None:
    _, rows, _ = await _csv(data)
    by_id = {r[0]: r for r in rows[1:]}
    for record in data.records:
        row = by_id[record["query_id"]]
        local = rs.when(record).astimezone(ZoneInfo("America/Sao_Paulo"))
        assert row[14] == local.strftime("%d/%m/%Y %H:%M")
        assert row[5] == record["ip"]
        assert row[12] == ("Sim" if record["error"] else "Não")
        assert row[9] == str(record["status"])
        assert float(row[13].replace(",", ".")) == pytest.approx(record["duration_ms"], abs=0.001)
    assert by_id[data.records[11]["query_id"]][13] == "1234,5"
    assert by_id[data.records[12]["query_id"]][13] == "0,25"
    _, utc_rows, _ = await _csv(data, tz="UTC", lang="en", sep="tab", bom="0")
    first = data.records[0]
    assert utc_rows[0] == EN_HEADER
    utc_row = {r[0]: r for r in utc_rows[1:]}[first["query_id"]]
    assert utc_row[14] == rs.when(first).strftime("%d/%m/%Y %H:%M") == "27/02/2026 23:50"
    assert utc_row[12] == ("Yes" if first["error"] else "No")
    assert float(utc_row[13]) == pytest.approx(first["duration_ms"], abs=0.001), "English uses a decimal point"


async def test_filters_apply_to_the_export(data: rs.Data) -> None:
    _, rows, _ = await _csv(data, status="2xx", **{"from": "27/02/2026 21:00", "until": "27/02/2026 21:20"})
    sp = ZoneInfo("America/Sao_Paulo")
    low, high = datetime(2026, 2, 27, 21, 0, tzinfo=sp), datetime(2026, 2, 27, 21, 21, tzinfo=sp)
    want = [r for r in data.records if 200 <= r["status"] < 300 and low <= rs.when(r) < high]
    assert want and [r[0] for r in rows[1:]] == rs.newest_first(want)


async def test_bad_export_options_are_400s(data: rs.Data) -> None:
    for params, parameter in (({"sep": "x"}, "sep"), ({"bom": "maybe"}, "bom"), ({"cursor": "abc"}, "cursor")):
        async with data.session.get(f"{data.base}/reports/api-logs.csv", params=params,
                                    headers=data.headers) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"]["parameter"] == parameter
