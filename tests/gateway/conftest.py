"""One topic and one ingest worker for every gateway test that follows records into ClickHouse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.settings import Settings
from tests.stack import Stack


@pytest.fixture(scope="session")
def gw_calls(stack: Stack) -> Iterator[Settings]:
    """Settings whose topic `trilha ingest` (a real process) writes into the shared ClickHouse."""
    settings = stack.with_topic("gw-calls")
    stack.spawn("ingest-gw", "ingest", settings=settings)
    try:
        yield settings
    finally:
        stack.stop("ingest-gw")
