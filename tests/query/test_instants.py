"""Every stored timestamp can be shown: `keyset.instant` is total over Int64 milliseconds.

The contract accepts `0001-01-01T00:00:00+01:00` (year 0 in UTC) and ClickHouse stores it, so the
Events API and the checkpointer must show it rather than fail on Python's datetime range.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ingest.writer import contract_columns, insert_settings
from query.calls.keyset import _calendar_instant, instant, instant_millis
from services.stack.records import RecordFactory
from tests.query.support import bearer, create_token, query_service, unique_company
from tests.stack import Stack

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_MS = int((datetime(1, 1, 1, tzinfo=UTC) - EPOCH) / timedelta(milliseconds=1))
LAST_MS = int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) / timedelta(milliseconds=1))


@given(st.integers(min_value=FIRST_MS, max_value=LAST_MS))
def test_calendar_arithmetic_agrees_with_datetime_wherever_datetime_reaches(ms: int) -> None:
    assert _calendar_instant(ms) == instant(ms)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_stored_millisecond_has_an_instant_that_reads_back(ms: int) -> None:
    shown = instant(ms)
    assert shown.endswith("Z") and shown[-5] == "." and "T" in shown
    assert instant_millis(shown) == ms


def test_year_zero_as_the_contract_lets_it_in() -> None:
    assert instant(FIRST_MS - 3_600_000) == "0000-12-31T23:00:00.000Z"
    assert instant(FIRST_MS) == "0001-01-01T00:00:00.000Z"
    assert instant(LAST_MS + 1) == "+10000-01-01T00:00:00.000Z"


async def test_a_record_stored_in_year_zero_is_answered(stack: Stack, ch) -> None:  # noqa: ANN001
    """The contract's `0001-01-01T00:00:00+01:00`, stored as ingest stores it, read by QueryId."""
    company = unique_company("year-zero")
    record = RecordFactory(seed=7, companies=1).record(datetime(2026, 1, 1, tzinfo=UTC), company=company)
    record.update(query_id=f"year-zero-{company}", timestamp="0001-01-01T00:00:00+01:00")
    await ch.raw_insert("calls", contract_columns(), orjson.dumps(record), fmt="JSONEachRow",
                        settings=insert_settings(1))
    async with query_service(stack, "query-year-zero") as service:
        answer = await service.post("/events", {"QueryId": record["query_id"]},
                                    headers=bearer(create_token(stack, company)))
    assert answer.status == 200, answer.body
    assert answer.body["Result"][0]["timestamp"] == "0000-12-31T23:00:00.000Z"
