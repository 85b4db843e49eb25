"""The call-record emitter a gateway embeds: `await emitter.emit(record)` and the record reaches Kafka.

`emit` only validates, encodes and queues: it never waits for Kafka and never raises into the
API call it records. A background task delivers queued records in windows, in order, through an
aiokafka producer (compressed, acks=all, idempotent where the broker supports it, keyed by
company so a company's records stay in order on one partition).

While Kafka is slow or unreachable, records wait in a memory buffer with a byte budget; past it,
the oldest move to an append-only spill file on disk, so the queue is always "spill file, then
memory" and order is kept. Only when the disk budget is exhausted too is a record dropped, and
every drop is counted. On a clean shutdown whatever Kafka has not acknowledged is appended to the
spill file, which the next start replays first: nothing is lost.

Delivery is at least once: a window whose acknowledgement fails is sent again whole, so Kafka may
hold a record twice (ingest and every reader de-duplicate by QueryId). Records keep their order
in the sense that a record's last copy always comes after the last copy of every earlier record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnsupportedVersionError,
)
from aiokafka.partitioner import DefaultPartitioner

from schemas.contract import call_record_validator
from services.gateway.emitter.buffer import MemoryBuffer
from services.gateway.emitter.spill import Entry, SpillFile, frame_size, open_slot
from services.runtime import clients, logs
from services.runtime.metrics import Registry
from services.runtime.settings import Settings

log = logs.get("trilha.emitter")

# A broker refuses these records whatever we do: retrying would stall every record behind them.
_REJECTED = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, CorruptRecordException,
             InvalidTimestampError)
# What a broker without idempotent producers (the embedded Tansu broker) answers to InitProducerId.
_NO_IDEMPOTENCE = (UnknownError, UnsupportedVersionError)
_PARTITIONER = DefaultPartitioner()
_FRAME_OVERHEAD = frame_size(b"", b"")


@dataclass
class EmitterStats:
    """What happened to the records handed to `emit` (all counts since start)."""

    accepted: int = 0  # queued for delivery
    delivered: int = 0  # acknowledged by Kafka (a record re-sent after a failure counts again)
    invalid: int = 0  # failed the contract (or could not be encoded): logged, never sent
    dropped: int = 0  # memory and disk budgets both exhausted, or emitted after close
    rejected: int = 0  # refused by the broker for good (e.g. too large)
    spilled: int = 0  # written to the spill file
    failures: int = 0  # delivery attempts that failed (the window is retried)


@dataclass
class _Window:
    """Records in flight, oldest first. `spill_end`: delivering them commits the spill up to there."""

    entries: list[Entry]
    from_memory: bool
    spill_end: int | None = None
    attempts: int = 0
    frame_bytes: int = 0  # what the entries would take in the spill file


class _Throttle:
    """Log a recurring problem at most once per `every` seconds, with how often it happened."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.last, self.count = every, -1e9, 0

    def due(self) -> int:
        self.count += 1
        now = time.monotonic()
        if now - self.last < self.every:
            return 0
        count, self.count, self.last = self.count, 0, now
        return count


class Emitter:
    """Queue call records for Kafka without ever making the API call wait or fail."""

    def __init__(self, settings: Settings, *, name: str = "emitter", topic: str | None = None,
                 memory_max_bytes: int | None = None, spill_max_bytes: int | None = None,
                 window_records: int = 5000, window_bytes: int = 2 * 1024 * 1024, linger_s: float = 0.05,
                 **producer_options: Any) -> None:
        self.settings = settings
        self.name = name
        self.topic = topic or settings.kafka_topic
        self.stats = EmitterStats()
        self.memory = MemoryBuffer(memory_max_bytes or settings.emitter_memory_max_bytes)
        self.spill_dir = Path(settings.data_dir) / "spill"
        self.spill_max_bytes = spill_max_bytes or settings.emitter_spill_max_bytes
        self.spill: SpillFile | None = None
        self.window_records, self.window_bytes, self.linger_s = window_records, window_bytes, linger_s
        self.producer_options = producer_options
        self.healthy = True  # False from a failed delivery until the next success
        self._validate = call_record_validator()
        self._max_record = settings.max_record_bytes
        self._inflight: _Window | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closing = False
        self._closed = False
        self._throttles = {k: _Throttle() for k in ("invalid", "dropped", "failure", "rejected")}

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> Emitter:
        """Open the spill file (replaying what a previous run left) and start delivering.

        Kafka need not be reachable: records queue until it is.
        """
        self.spill = open_slot(self.spill_dir, self.name, self.spill_max_bytes)
        if self.spill.pending_records:
            log.info("replaying spilled records", spill=str(self.spill.path),
                     records=self.spill.pending_records)
        self._pump = asyncio.create_task(self._run(), name=f"emitter-{self.name}")
        return self

    async def __aenter__(self) -> Emitter:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def flush(self, timeout: float | None = None, give_up_when_unhealthy: bool = False) -> bool:
        """Wait until everything queued is in Kafka; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.backlog:
            if give_up_when_unhealthy and not self.healthy:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(0.2, remaining or 0.2))
        return True

    async def close(self, timeout: float | None = None) -> None:
        """Deliver what Kafka will take within `timeout`; keep the rest in the spill file for next time."""
        if self._closed or self.spill is None:
            return
        self._closing = True
        timeout = self.settings.emitter_flush_timeout_s if timeout is None else timeout
        await self.flush(timeout, give_up_when_unhealthy=True)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._persist_all()
        kept = self.spill.pending_records
        self.spill.close()
        self._closed = True
        await self._stop_producer()
        log.info("emitter closed", **self.stats.__dict__, kept_in_spill=kept, spill=str(self.spill.path))

    @property
    def backlog(self) -> int:
        """Records not yet acknowledged by Kafka (in flight, on disk, in memory)."""
        inflight = self._inflight
        on_disk = self.spill.pending_records if self.spill else 0
        in_flight_only = len(inflight.entries) if inflight and inflight.spill_end is None else 0
        return in_flight_only + on_disk + len(self.memory)

    # -- emitting --------------------------------------------------------------------------------

    async def emit(self, record: dict[str, Any]) -> bool:
        """Queue `record`; True if it was queued. Never waits for Kafka, never raises."""
        return self.emit_nowait(record)

    def emit_nowait(self, record: dict[str, Any]) -> bool:
        """`emit` for code that is not a coroutine (same guarantees)."""
        try:
            reason = self._validate(record)
            if reason is not None:
                return self._refuse("invalid", reason, record)
            value = orjson.dumps(record)
            if len(value) > self._max_record:
                return self._refuse("invalid", f"record is {len(value)} bytes, above TRILHA_MAX_RECORD_BYTES="
                                               f"{self._max_record}", record)
            entry = (record["company_id"].encode(), value)
            if self._closed or self.spill is None:
                when = "after close()" if self._closed else "before start()"
                return self._refuse("dropped", f"emitted {when}", record)
            size = len(entry[0]) + len(value)
            if not self._disk_can_hold(size + _FRAME_OVERHEAD):
                return self._refuse("dropped", "memory and disk budgets are exhausted "
                                               "(TRILHA_EMITTER_SPILL_MAX_BYTES)", record)
            if not self.memory.fits(size):
                self._relieve_memory()
            self.memory.append(entry)
            self.stats.accepted += 1
            self._wake.set()
            return True
        except Exception as exc:  # noqa: BLE001 - the API call must never fail because of us
            return self._refuse("invalid", f"cannot encode record: {exc!r}", record)

    def _refuse(self, kind: str, reason: str, record: Any) -> bool:
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        count = self._throttles[kind].due()
        if count:
            query_id = record.get("query_id") if isinstance(record, dict) else None
            log.warning(f"record {kind}", reason=reason, query_id=query_id, occurrences=count,
                        emitter=self.name)
        return False

    def _disk_can_hold(self, extra: int) -> bool:
        """Could everything not yet delivered, plus `extra`, go to disk? Accepting a record promises
        that it is delivered or kept, so memory is backed by room in the disk budget."""
        assert self.spill is not None
        window = self._inflight
        unbacked = 0
        if window is not None and window.from_memory and window.spill_end is None:
            unbacked = window.frame_bytes
        reserved = self.spill.size + self.memory.bytes + _FRAME_OVERHEAD * len(self.memory) + unbacked
        return reserved + extra <= self.spill.max_bytes

    def _relieve_memory(self) -> None:
        """Move the oldest records in memory to the spill file, keeping the queue's order."""
        assert self.spill is not None
        if not self._persist_inflight():
            return
        moving = self.memory.take(len(self.memory), self.memory.bytes - self.memory.max_bytes // 2)
        written = self.spill.append_many(moving)
        self.stats.spilled += written
        if written < len(moving):
            self.memory.put_back(moving[written:])

    def _persist_inflight(self) -> bool:
        """A window taken from memory is older than anything the spill file will get: it goes first."""
        window = self._inflight
        assert self.spill is not None
        if window is None or not window.from_memory or window.spill_end is not None:
            return True
        if self.spill.append_many(window.entries) < len(window.entries):
            return False  # truncating back is not possible with O_APPEND; the window stays in memory
        self.stats.spilled += len(window.entries)
        window.spill_end = self.spill.size
        self.spill.skip_read(self.spill.size, len(window.entries))
        return True

    def _persist_all(self) -> None:
        """On close: in-flight (if from memory), then memory, go to the end of the spill file.

        `_disk_can_hold` reserved the room when they were accepted, so this always fits."""
        assert self.spill is not None
        if not self._persist_inflight() and self._inflight is not None:
            self.memory.put_back(self._inflight.entries)
        remaining = self.memory.take(len(self.memory), self.memory.bytes + 1)
        written = self.spill.append_many(remaining)
        self.stats.spilled += written
        if written < len(remaining):  # only if the budget shrank between runs
            self.stats.dropped += len(remaining) - written
            log.error("records dropped on close: disk budget exhausted", dropped=len(remaining) - written,
                      spill=str(self.spill.path))

    # -- delivering ------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            if self._inflight is None and self._should_linger():
                await asyncio.sleep(self.linger_s)
            window = self._inflight or self._next_window()
            if window is None:
                self._progress.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            self._inflight = window
            try:
                rejected = await self._deliver(window)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - anything Kafka throws means: try again later
                self._failed(window, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            self._delivered(window, rejected)

    def _should_linger(self) -> bool:
        """Wait a moment for more records when only a few are queued: one produce request per API
        call would cost the gateway far more CPU than the call itself. Full windows go at once."""
        return (0 < len(self.memory) < self.window_records and self.memory.bytes < self.window_bytes
                and self.linger_s > 0 and not self._closing and not self.spill_has_unread)

    @property
    def spill_has_unread(self) -> bool:
        return self.spill is not None and self.spill.has_unread

    def _next_window(self) -> _Window | None:
        spill = self.spill
        assert spill is not None
        if spill.has_unread:
            entries, end = spill.read(self.window_records, self.window_bytes)
            return _Window(entries, from_memory=False, spill_end=end)
        if len(self.memory):
            entries = self.memory.take(self.window_records, self.window_bytes)
            frame_bytes = sum(len(k) + len(v) for k, v in entries) + _FRAME_OVERHEAD * len(entries)
            return _Window(entries, from_memory=True, frame_bytes=frame_bytes)
        return None

    async def _deliver(self, window: _Window) -> int:
        """Send a window and wait for every acknowledgement; returns how many the broker refused for good.

        Records are packed into one batch per partition here (what aiokafka's per-record `send`
        would do, at about a third of the CPU): the partition comes from the key, as Kafka's
        default partitioner would choose it, so a company's records share a partition.
        """
        window.attempts += 1
        producer = await self._ready_producer()
        if not self.healthy:
            await self._refresh_metadata(producer)
        partitions = sorted(await producer.partitions_for(self.topic))
        sent: list[tuple[asyncio.Future[Any], list[Entry]]] = []
        try:
            for partition, entries in _by_partition(window.entries, partitions).items():
                for batch, members in _batches(producer, entries):
                    sent.append((await producer.send_batch(batch, self.topic, partition=partition), members))
        except BaseException:
            for future, _ in sent:  # they may still settle; their outcome no longer matters
                future.add_done_callback(_ignore_outcome)
            raise
        timeout = producer._request_timeout_ms / 1000 * 2 + 5  # noqa: SLF001 - aiokafka's own expiry, doubled
        outcomes = asyncio.gather(*(f for f, _ in sent), return_exceptions=True)
        results = await asyncio.wait_for(outcomes, timeout)
        rejected = 0
        for result, (_, members) in zip(results, sent, strict=True):
            if isinstance(result, _REJECTED):
                rejected += await self._one_by_one(producer, members)
            elif isinstance(result, BaseException):
                raise result
        return rejected

    async def _refresh_metadata(self, producer: AIOKafkaProducer) -> None:
        """After an outage, ask the broker about the topic before sending again.

        A restarted broker may no longer have the topic; a producer using its cached metadata
        would then send blind. The embedded (Tansu) broker even acknowledges such records and
        drops them, and creates the topic only when metadata is asked for it.
        """
        if not await asyncio.wait_for(producer.client.force_metadata_update(), 15):
            raise KafkaConnectionError(f"no metadata from {self.settings.kafka_bootstrap_servers}")

    async def _one_by_one(self, producer: AIOKafkaProducer, entries: list[Entry]) -> int:
        """A refused batch is re-sent record by record, so only the records at fault are lost."""
        futures = [await producer.send(self.topic, value, key=key) for key, value in entries]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, _REJECTED):
                raise result
        return sum(isinstance(r, _REJECTED) for r in results)

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            options: dict[str, Any] = {
                "compression_type": self.settings.emitter_compression,
                "linger_ms": 5,
                "max_batch_size": 512 * 1024,
                "max_request_size": max(1024 * 1024, self._max_record + 64 * 1024),
                "request_timeout_ms": 10_000,
                "retry_backoff_ms": 200,
            }
            options.update(self.producer_options)
            try:
                self._producer = await _started(clients.kafka_producer(self.settings, **options))
            except _NO_IDEMPOTENCE as exc:
                if not options.get("enable_idempotence", self.settings.kafka_idempotence):
                    raise
                self._producer = await self._without_idempotence(options, exc)
        return self._producer

    async def _without_idempotence(self, options: dict[str, Any], exc: BaseException) -> AIOKafkaProducer:
        """The broker cannot give a producer id (Tansu cannot): deliver without idempotence rather than
        not at all. Copies a retry makes are harmless, as every reader de-duplicates by QueryId."""
        log.warning("the Kafka broker does not support idempotent producers; delivering without idempotence "
                    "(set TRILHA_KAFKA_IDEMPOTENCE=false to skip this check)", error=repr(exc), emitter=self.name,
                    bootstrap=self.settings.kafka_bootstrap_servers)
        self.producer_options["enable_idempotence"] = False
        return await _started(clients.kafka_producer(self.settings, **{**options, "enable_idempotence": False}))

    def _failed(self, window: _Window, exc: BaseException) -> None:
        self.stats.failures += 1
        self.healthy = False
        count = self._throttles["failure"].due()
        if count:
            log.warning("kafka delivery failed; records wait in memory and on disk", error=repr(exc),
                        failures=count, backlog=self.backlog, window=len(window.entries), emitter=self.name,
                        bootstrap=self.settings.kafka_bootstrap_servers, topic=self.topic)

    def register_metrics(self, registry: Registry) -> None:
        """Expose the stats on `registry` (rendered from the live counts at each scrape)."""
        registry.metrics.setdefault(f"trilha_emitter_records_{self.name}", _StatsMetric(self))

    def _delivered(self, window: _Window, rejected: int) -> None:
        assert self.spill is not None
        if window.spill_end is not None:
            self.spill.commit(window.spill_end, len(window.entries))
        self.stats.delivered += len(window.entries) - rejected
        if rejected:
            self.stats.rejected += rejected
            if self._throttles["rejected"].due():
                log.error("kafka refused records for good (too large or corrupt)", rejected=rejected)
        if not self.healthy:
            log.info("kafka delivery resumed", emitter=self.name, backlog=self.backlog)
        self.healthy = True
        self._inflight = None
        self._progress.set()

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - unacknowledged records are in the spill file
                with contextlib.suppress(Exception):
                    await producer.client.close()


async def _started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


def _by_partition(entries: list[Entry], partitions: list[int]) -> dict[int, list[Entry]]:
    """Group records by the partition Kafka's default partitioner (murmur2 of the key) picks."""
    groups: dict[int, list[Entry]] = {}
    cache: dict[bytes, int] = {}
    for entry in entries:
        key = entry[0]
        partition = cache.get(key)
        if partition is None:
            partition = cache[key] = _PARTITIONER(key, partitions, partitions)
        groups.setdefault(partition, []).append(entry)
    return groups


def _batches(producer: AIOKafkaProducer, entries: list[Entry]) -> list[tuple[Any, list[Entry]]]:
    """Fill batches up to the producer's batch size (a record larger than that gets one of its own)."""
    batches: list[tuple[Any, list[Entry]]] = []
    batch, members = producer.create_batch(), []
    for key, value in entries:
        if batch.append(key=key, value=value, timestamp=None) is None:
            batches.append((batch, members))
            batch, members = producer.create_batch(), []
            batch.append(key=key, value=value, timestamp=None)
        members.append((key, value))
    if members:
        batches.append((batch, members))
    return batches


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _StatsMetric:
    """Duck-types a `services.runtime.metrics` metric: the registry calls `render()`."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter

    def render(self) -> str:
        e = self.emitter
        lines = ["# HELP trilha_emitter_records_total Call records by what happened to them",
                 "# TYPE trilha_emitter_records_total counter"]
        lines += [f'trilha_emitter_records_total{{emitter="{e.name}",outcome="{k}"}} {v}'
                  for k, v in e.stats.__dict__.items()]
        lines += ["# HELP trilha_emitter_backlog Records waiting for Kafka (memory, disk, in flight)",
                  "# TYPE trilha_emitter_backlog gauge",
                  f'trilha_emitter_backlog{{emitter="{e.name}"}} {e.backlog}',
                  "# HELP trilha_emitter_memory_bytes Bytes of records held in memory",
                  "# TYPE trilha_emitter_memory_bytes gauge",
                  f'trilha_emitter_memory_bytes{{emitter="{e.name}"}} {e.memory.bytes}']
        return "\n".join(lines) + "\n"
