"""One topic and one ingest worker for every gateway test that follows records into ClickHouse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.runtime.settings import Settings
from tests.gateway.helpers import ingested
from tests.stack import Stack


@pytest.fixture(scope="session")
async def gw_calls(stack: Stack) -> AsyncIterator[Settings]:
    """Settings whose topic `trilha ingest` (a real process) writes into the shared ClickHouse."""
    async with ingested(stack, "gw-calls", "ingest-gw") as settings:
        yield settings
