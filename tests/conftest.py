"""Session-wide fixtures: one running stack for all integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime import clients
from tests.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


@pytest.fixture(scope="session")
async def ch(stack: Stack) -> AsyncIterator[AsyncClient]:
    client = await clients.clickhouse(stack.settings)
    yield client
    await client.close()
