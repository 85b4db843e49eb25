"""Rows stored before the contract bounded them (payloads nested hundreds of levels, invalid UTF-8 in
any string, numbers no JSON reader holds) are still answered by every read path, never with a 500:
text fields with U+FFFD for the bad bytes, payloads as their text with the reason in
`served_as_text`. The rows go straight into ClickHouse, behind ingest's back."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from ingest.writer import contract_columns, insert_settings
from services.stack.records import RecordFactory
from tests.query import report_support as rs
from tests.query.support import QueryService, bearer, create_token, query_service, unique_company
from tests.stack import Stack

START = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
BAD = b"\xff\xfe"


def _line(record: dict[str, Any], **raw: bytes) -> bytes:
    """A JSONEachRow line with fields given as raw JSON bytes (which orjson could not produce)."""
    body = orjson.dumps(record)[:-1]
    return body + b"".join(b',"%s":%s' % (name.encode(), value) for name, value in raw.items()) + b"}"


def _hostile(company: str) -> dict[str, bytes]:
    """Each shape the service once failed on, by name, as the line stored in `calls`."""
    factory = RecordFactory(seed=93, companies=1, result_bytes=(10, 40))
    shapes = {
        "deep_300": {"request": b"[" * 300 + b"]" * 300},
        "deep_1000": {"result": b"{\"a\":" * 1000 + b"1" + b"}" * 1000},
        # (client names cannot hold it: the folded column's normalizeUTF8NFD refuses the row)
        "utf8_text": {"url": b'"/x/' + BAD + b'"', "resource": b'"Jo' + BAD + b'o"',
                      "error_message": b'"' + BAD + b'"'},
        "utf8_request": {"request": b'{"nome":"' + BAD + b'"}'},
        "huge_number": {"result": b'{"n":1e999999}'},
        "lone_surrogate": {"request": b'"{\\"a\\":\\"\\\\ud800\\"}"'},  # stored text: {"a":"\ud800"}
    }
    lines = {}
    for n, (name, raw) in enumerate(shapes.items()):
        record = factory.record(START + timedelta(minutes=n), company=company, q=f"doc{{{n}}}",
                                tags={"lote": "L1"}, status=200)
        for field in raw:
            record.pop(field, None)
        record["query_id"] = f"{name}-{company}"
        lines[name] = _line(record, **raw)
    return lines


@pytest.fixture(scope="module")
async def world(stack: Stack, ch) -> dict[str, Any]:  # noqa: ANN001
    company = unique_company("unservable")
    lines = _hostile(company)
    await ch.raw_insert("calls", contract_columns(), b"\n".join(lines.values()), fmt="JSONEachRow",
                        settings=insert_settings(100))  # as ingest writes rows
    stored = await ch.query("SELECT count() FROM calls WHERE company_id = {c:String}", parameters={"c": company})
    assert stored.result_rows[0][0] == len(lines)
    return {"company": company, "names": list(lines), "headers": bearer(create_token(stack, company))}


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-unservable") as running:
        yield running


async def test_every_hostile_row_is_answered_by_query_id(service: QueryService, world: dict[str, Any]) -> None:
    found = {}
    for name in world["names"]:
        answer = await service.post("/events", {"QueryId": f"{name}-{world['company']}"}, headers=world["headers"])
        assert answer.status == 200, (name, answer.body)
        [found[name]] = answer.body["Result"]
    assert found["deep_300"]["request"] == "[" * 300 + "]" * 300
    assert "nested more than 64" in found["deep_300"]["served_as_text"]["request"]
    assert found["deep_1000"]["result"].startswith('{"a":{"a":')
    assert "result" in found["deep_1000"]["served_as_text"]
    # text reads as the report, CSV and print view read it: one U+FFFD per bad run
    assert found["utf8_text"]["resource"] == "Jo\ufffdo" and found["utf8_text"]["url"] == "/x/\ufffd"
    assert "served_as_text" not in found["utf8_text"]
    assert found["utf8_request"]["request"] == '{"nome":"\ufffd\ufffd"}'
    assert "invalid UTF-8" in found["utf8_request"]["served_as_text"]["request"]
    assert found["huge_number"]["result"] == '{"n":1e999999}' and "result" in found["huge_number"]["served_as_text"]
    assert found["lone_surrogate"]["request"] == '{"a":"\\ud800"}'
    assert all(set(record.get("served_as_text", {})) <= {"request", "result"} for record in found.values())


@pytest.mark.parametrize("search", [{"Tags": {"lote": "L1"}}, {"q": "doc{0}"}, {"q": "doc{1}"}])
async def test_every_search_page_holding_them_is_answered(service: QueryService, world: dict[str, Any],
                                                          search: dict[str, Any]) -> None:
    ids, cursor = [], None
    while True:
        body = {**search, "PageSize": 2, **({"Cursor": cursor} if cursor else {})}
        answer = await service.post("/events", body, headers=world["headers"])
        assert answer.status == 200, answer.body
        ids += [r["query_id"] for r in answer.body["Result"]]
        cursor = answer.body["Cursor"]
        if cursor is None:
            break
    expected = len(world["names"]) if "Tags" in search else 1
    assert len(ids) == len(set(ids)) == expected


async def test_the_report_page_csv_print_and_stats_answer_them(stack: Stack, world: dict[str, Any]) -> None:
    headers = world["headers"]
    async with rs.service(stack, "query-unservable-report") as (session, base):
        rows, _ = await rs.all_pages(session, base, headers, {"page_size": "2"})
        assert len(rows) == len(world["names"])
        by_id = {r["query_id"]: r for r in rows}
        assert by_id[f"utf8_text-{world['company']}"]["resource"] == "Jo\ufffdo"  # one U+FFFD per bad run
        async with session.get(f"{base}/reports/api-logs.csv", headers=headers) as answer:
            assert answer.status == 200
            text = (await answer.read()).decode("utf-8")  # valid UTF-8 throughout
        table = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
        assert len(table) == 1 + len(world["names"])
        assert any("Jo\ufffdo" in cell for row in table for cell in row)
        async with session.get(f"{base}/reports/api-logs/print", headers=headers) as answer:
            assert answer.status == 200
            assert "Jo\ufffdo" in await answer.text()
        async with session.get(f"{base}/reports/api-logs/stats", headers=headers) as answer:
            assert answer.status == 200
            assert (await answer.json())["total"] == len(world["names"])
