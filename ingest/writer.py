"""One batch → one ClickHouse insert of the original JSON lines, retried until acknowledged.

The rows go as JSONEachRow through `raw_insert`: ClickHouse parses them (no Python row building).
Every attempt of a batch carries the same `insert_deduplication_token`, derived from the topic
and the offsets it holds, so an insert that timed out here but succeeded there is not written
twice (the Kafka Connect sink's scheme). Failures split in two kinds:

* the server or the network (refused, timed out, overloaded): retry with exponential backoff and
  jitter, each attempt bounded by `insert_timeout_s`, for as long as it takes;
* the DATA (a parse error): bisect the batch until the offending rows are isolated, write the
  rest, and hand the offenders back to be dead-lettered with ClickHouse's message.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from ingest.batcher import Batch, RejectedMessage
from ingest.decode import REJECTED_BY_CLICKHOUSE, Rejection
from ingest.metrics import IngestMetrics
from schemas import call_record_schema

# ClickHouse error codes that blame the inserted data, not the server: parse and conversion errors
# (CANNOT_PARSE_*, INCORRECT_DATA, TYPE_MISMATCH, UNEXPECTED_DATA_AFTER_PARSED_VALUE, ...). Anything
# else (server down, table missing, too many parts) is retried: bisecting it would dead-letter good rows.
DATA_ERROR_CODES = frozenset({
    6, 25, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 128, 130, 131, 321, 407, 441, 467, 621, 632, 675, 676, 691,
})  # 621 CANNOT_NORMALIZE_STRING: a MATERIALIZED fold of invalid UTF-8 text
_PARSE_ERROR = re.compile(r"\(at row \d+\)|while parsing|Cannot parse", re.IGNORECASE)
_MAX_MESSAGE = 2000


def contract_columns() -> list[str]:
    """The `calls` columns ingest writes: the contract's property names, nothing restated here."""
    return list(call_record_schema()["properties"])


def insert_settings(max_rows: int) -> dict[str, Any]:
    """How ClickHouse must read the lines: any JSON payload kept as its text, omitted fields defaulted,
    unknown fields ignored, and the whole batch squashed into one block (one part, one dedup token).

    `optimize_on_insert=0`: the replacing engines would otherwise run a merge over every inserted
    block, copying each row once more (~25-40% of the insert's CPU, measured with chDB) to collapse
    duplicates a batch almost never holds; merges collapse those later and readers de-duplicate.
    """
    block_rows = max(1_048_576, 2 * max_rows)
    return {
        "input_format_skip_unknown_fields": 1,
        "date_time_input_format": "best_effort",
        "input_format_json_read_objects_as_strings": 1,
        "input_format_json_read_arrays_as_strings": 1,
        "input_format_json_read_numbers_as_strings": 1,
        "input_format_json_read_bools_as_strings": 1,
        "input_format_defaults_for_omitted_fields": 1,
        "insert_deduplicate": 1,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "max_insert_block_size": block_rows,
        "min_insert_block_size_rows": block_rows,
        "min_insert_block_size_bytes": 1 << 30,
        "async_insert": 0,
        "optimize_on_insert": 0,
    }


class DataRejected(Exception):
    """ClickHouse refused the rows themselves; retrying the same rows cannot succeed."""


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0, rand: Callable[[], float] = random.random
                  ) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so retrying workers spread out."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + rand() * ceiling / 2


def batch_token(topic: str, batch: Batch) -> str:
    """Deterministic token of a whole batch: the same offsets hold the same messages. The row and byte
    counts make it name the content too, should a changed limit or contract turn the same messages
    into other rows (a token that matched other rows would make ClickHouse drop them as a repeat)."""
    spans = ",".join(f"{tp.partition}:{first}-{last}" for tp, (first, last) in sorted(batch.ranges.items()))
    return f"{topic}|{spans}|{len(batch.bodies)}r{batch.nbytes}b"


def rows_token(topic: str, origins: Sequence[Any]) -> str:
    """Token of a part of a batch (after bisection): names the exact (partition, offset) of each row."""
    digest = hashlib.blake2b(digest_size=16)
    for msg in origins:
        digest.update(b"%d:%d," % (msg.partition, msg.offset))
    return f"{topic}|rows:{len(origins)}|{digest.hexdigest()}"


def is_data_error(exc: BaseException) -> bool:
    """ClickHouse answered, and blamed the rows (by error code, or by a parser's "at row N")."""
    if not isinstance(exc, DatabaseError) or isinstance(exc, OperationalError):
        return False
    return getattr(exc, "code", None) in DATA_ERROR_CODES or _PARSE_ERROR.search(str(exc)) is not None


class Writer:
    """Writes batches into `table`; `write` returns only when every row is stored or rejected."""

    def __init__(self, client: Any, topic: str, metrics: IngestMetrics, log: Any, *, insert_timeout_s: float,
                 max_rows: int, table: str = "calls", columns: Sequence[str] | None = None,
                 delay: Callable[[int], float] = backoff_delay) -> None:
        self.client, self.topic, self.metrics, self.log = client, topic, metrics, log
        self.insert_timeout_s, self.table, self.delay = insert_timeout_s, table, delay
        self.columns = list(columns or contract_columns())
        self.settings = insert_settings(max_rows)

    async def write(self, batch: Batch) -> list[RejectedMessage]:
        """Insert the batch's rows; returns the rows ClickHouse refused (to be dead-lettered)."""
        refused: list[RejectedMessage] = []
        if batch.bodies:
            await self._write_part(batch, 0, len(batch.bodies), refused)
        return refused

    async def _write_part(self, batch: Batch, lo: int, hi: int, refused: list[RejectedMessage]) -> None:
        whole = lo == 0 and hi == len(batch.bodies)
        token = batch_token(self.topic, batch) if whole else rows_token(self.topic, batch.origins[lo:hi])
        try:
            await self._insert(lambda: _stream(batch.bodies, lo, hi), token, hi - lo)
        except DataRejected as exc:
            if hi - lo == 1:
                refused.append(RejectedMessage.of(batch.origins[lo], Rejection(REJECTED_BY_CLICKHOUSE, str(exc))))
                return
            self.log.warning("batch refused by ClickHouse, bisecting", rows=hi - lo, error=str(exc)[:300])
            mid = (lo + hi) // 2
            await self._write_part(batch, lo, mid, refused)
            await self._write_part(batch, mid, hi, refused)

    async def _insert(self, body: Callable[[], AsyncIterator[bytes]], token: str, rows: int) -> None:
        """One logical insert: attempts until acknowledged; raises DataRejected for bad data."""
        settings = {**self.settings, "insert_deduplication_token": token}
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await asyncio.wait_for(
                    self.client.raw_insert(self.table, self.columns, body(), settings=settings, fmt="JSONEachRow"),
                    self.insert_timeout_s)
            except Exception as exc:
                if is_data_error(exc):
                    raise DataRejected(_message(exc)) from None
                if not _retryable(exc):
                    raise
                pause = self.delay(attempt)
                kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                self.metrics.insert_retries.inc(kind=kind)
                self.log.warning("insert failed, retrying", attempt=attempt, rows=rows, retry_in_s=round(pause, 2),
                                 error=_message(exc)[:300] or kind)
                await asyncio.sleep(pause)
                continue
            self.metrics.insert_latency.observe(time.perf_counter() - started)
            if attempt > 1:
                self.log.info("insert succeeded after retries", attempts=attempt, rows=rows)
            return


async def _stream(bodies: list[bytes], lo: int, hi: int, rows_per_chunk: int = 2048) -> AsyncIterator[bytes]:
    """The rows as a chunked request body: no copy of the whole batch is ever made (it can be 32 MiB),
    and the statement travels in the URL, so the lines reach the socket in a few large writes."""
    for start in range(lo, hi, rows_per_chunk):
        yield b"\n".join(bodies[start:min(start + rows_per_chunk, hi)]) + b"\n"


def _retryable(exc: BaseException) -> bool:
    """Server, network and timeout failures are worth retrying; a programming error is not."""
    return isinstance(exc, ClickHouseError | aiohttp.ClientError | OSError | TimeoutError)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"
