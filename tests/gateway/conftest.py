"""One topic and one ingest worker for every gateway test that follows records into ClickHouse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services import clients
from services.settings import Settings
from tests.stack import Stack


@pytest.fixture(scope="session")
async def gw_calls(stack: Stack) -> AsyncIterator[Settings]:
    """Settings whose topic `trilha ingest` (a real process) writes into the shared ClickHouse."""
    settings = stack.with_topic("gw-calls")
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    stack.spawn("ingest-gw", "ingest", settings=settings)
    try:
        yield settings
    finally:
        stack.stop("ingest-gw")
