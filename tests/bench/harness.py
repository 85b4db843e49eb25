"""How every benchmark runs: inside a stack of its own, in a data directory it removes afterwards
unless asked to keep it (to look at, or to measure again). `SHARDS=N make bench-…` (the variable
TRILHA_TEST_CLICKHOUSE_SHARDS) runs it on N embedded ClickHouse shards."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.stack import Stack, running_stack, shards_under_test


def in_own_stack(name: str, work: Callable[[Stack], Awaitable[int]], keep: bool = False,
                 reuse: str | None = None) -> int:
    """Run `work` against a fresh embedded stack (or the one a kept run left in `reuse`)."""
    data_dir = Path(reuse or tempfile.mkdtemp(prefix=f"bench-{name}-"))
    print(f"ClickHouse shards: {shards_under_test()}", flush=True)
    try:
        with running_stack(data_dir) as stack:
            return asyncio.run(work(stack))
    finally:
        if keep:
            print(f"data kept in {data_dir} (measure again with --reuse {data_dir})")
        elif not reuse:
            shutil.rmtree(data_dir, ignore_errors=True)
