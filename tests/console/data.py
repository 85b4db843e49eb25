"""The records the browser tests look at: one company's calls over a few minutes two hours ago (so
the dashboard's last 24 hours see them), a CPF searched with `q` in three of them, and a token for
the company made by the real CLI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.asyncclient import AsyncClient

from services.stack.records import RecordFactory
from tests.query import support
from tests.stack import Stack

SP = ZoneInfo("America/Sao_Paulo")
CPF = "52049409605"
COUNT = 150


@dataclass
class Demo:
    company: str
    token: str
    records: list[dict[str, Any]]
    start: datetime  # the first record's minute (UTC), whole minute

    def minute(self, n: int) -> datetime:
        """The start of the n-th minute of the data, in São Paulo time (the console's default zone)."""
        return (self.start + timedelta(minutes=n)).astimezone(SP)

    def between(self, first: datetime, last_minute: datetime, status_class: int | None = None) -> list[str]:
        """query_ids from `first` to the end of `last_minute` (the whole minute), optionally one status class."""
        end = last_minute + timedelta(minutes=1)
        return [r["query_id"] for r in self.records
                if first <= datetime.fromisoformat(r["timestamp"]) < end
                and (status_class is None or r["status"] // 100 == status_class)]


async def make_demo(stack: Stack, ch: AsyncClient) -> Demo:
    company = support.unique_company("console")
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    records = RecordFactory(seed=13, companies=1).records(COUNT, start=start, step=timedelta(seconds=3),
                                                          company=company)
    for n in (3, 40, 77):
        records[n]["q"] = f"doc{{{CPF}}}"
    records[5]["duration_ms"] = 36.172
    records[5]["client_name"], records[5]["client_username"] = "Maria Souza", "maria.souza"
    await support.raw_insert(ch, records)
    token = await asyncio.to_thread(support.create_token, stack, company, "auditora", "console tests")
    return Demo(company, token, records, start)
