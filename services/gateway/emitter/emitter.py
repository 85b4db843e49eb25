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

Each accepted record is numbered (`gateway_id`, `gateway_seq`: see `sequence`) before it is encoded,
so a record re-sent from the spill file keeps its number and the numbers survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.contract import call_record_validator
from services.gateway.emitter import kafka
from services.gateway.emitter.buffer import MemoryBuffer
from services.gateway.emitter.queue import FRAME_OVERHEAD, RecordQueue, Window
from services.gateway.emitter.sequence import Sequence
from services.gateway.emitter.spill import SpillFile, open_slot
from services.gateway.emitter.stats import EmitterStats, StatsMetric, Throttle
from services.runtime import clients, logs
from services.runtime.metrics import Registry
from services.runtime.settings import Settings

log = logs.get("trilha.emitter")


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
        self.queue = RecordQueue(MemoryBuffer(memory_max_bytes or settings.emitter_memory_max_bytes), self.stats)
        self.spill_dir = Path(settings.data_dir) / "spill"
        self.spill_max_bytes = spill_max_bytes or settings.emitter_spill_max_bytes
        self.window_records, self.window_bytes, self.linger_s = window_records, window_bytes, linger_s
        self.producer_options = producer_options
        self.healthy = True  # False from a failed delivery until the next success
        self._validate = call_record_validator()
        self.sequence: Sequence | None = None  # the gateway's numbering (from `start`, with the spill slot)
        self._max_record = settings.max_record_bytes
        self._producer: AIOKafkaProducer | None = None
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closing = False
        self._closed = False
        self._throttles = {k: Throttle() for k in ("invalid", "dropped", "failure", "rejected")}

    @property
    def memory(self) -> MemoryBuffer:
        """Records accepted and not yet spilled or sent."""
        return self.queue.memory

    @property
    def spill(self) -> SpillFile | None:
        """The spill file (None before `start`)."""
        return self.queue.spill

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> Emitter:
        """Open the spill file (replaying what a previous run left) and start delivering.

        Kafka need not be reachable: records queue until it is.
        """
        spill = self.queue.spill = open_slot(self.spill_dir, self.name, self.spill_max_bytes)
        self.sequence = Sequence(spill.path.with_suffix(".seq"), spill.path.stem).open()
        if spill.pending_records:
            log.info("replaying spilled records", spill=str(spill.path), records=spill.pending_records)
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
        spill = self.spill
        if self._closed or spill is None:
            return
        self._closing = True
        timeout = self.settings.emitter_flush_timeout_s if timeout is None else timeout
        await self.flush(timeout, give_up_when_unhealthy=True)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self.queue.persist_all()
        kept = spill.pending_records
        spill.close()
        if self.sequence is not None:
            self.sequence.close()
        self._closed = True
        await self._stop_producer()
        log.info("emitter closed", **self.stats.__dict__, kept_in_spill=kept, spill=str(spill.path))

    @property
    def backlog(self) -> int:
        """Records not yet acknowledged by Kafka (in flight, on disk, in memory)."""
        return self.queue.backlog

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
            sequence = self.sequence
            if self._closed or sequence is None:
                when = "after close()" if self._closed else "before start()"
                return self._refuse("dropped", f"emitted {when}", record)
            company = record["company_id"]
            numbered = record.get("gateway_seq") is None  # a relay's record keeps the numbers it carries
            if numbered:
                record = {**record, "gateway_id": sequence.gateway_id, "gateway_seq": sequence.peek(company)}
            value = orjson.dumps(record)
            if len(value) > self._max_record:
                return self._refuse("invalid", f"record is {len(value)} bytes, above TRILHA_MAX_RECORD_BYTES="
                                               f"{self._max_record}", record)
            if numbered:  # from here the record is kept, or dropped with its number left as a gap
                sequence.take(company)
            entry = (company.encode(), value)
            size = len(entry[0]) + len(value)
            if not self.queue.disk_can_hold(size + FRAME_OVERHEAD):
                return self._refuse("dropped", "memory and disk budgets are exhausted "
                                               "(TRILHA_EMITTER_SPILL_MAX_BYTES)", record)
            if not self.memory.fits(size):
                self.queue.relieve_memory()
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

    # -- delivering ------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            if self.queue.inflight is None and self._should_linger():
                await asyncio.sleep(self.linger_s)
            window = self.queue.inflight or self.queue.next_window(self.window_records, self.window_bytes)
            if window is None:
                self._progress.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            self.queue.inflight = window
            try:
                await self._numbers_durable()
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
        """Records on disk not yet read for sending."""
        return self.spill is not None and self.spill.has_unread

    async def _numbers_durable(self) -> None:
        """Numbers given since the last sync reach the disk before records carrying them leave: a
        restart after a power cut must not give a delivered record's number to another record."""
        if self.sequence is not None and self.sequence.dirty:
            await asyncio.to_thread(self.sequence.sync)

    async def _deliver(self, window: Window) -> int:
        """Send a window and wait for every acknowledgement; returns how many the broker refused for good."""
        window.attempts += 1
        producer = await self._ready_producer()
        if not self.healthy:
            await kafka.refresh_metadata(producer, self.settings.kafka_bootstrap_servers)
        return await kafka.send_window(producer, self.topic, window.entries)

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
                self._producer = await kafka.started(clients.kafka_producer(self.settings, **options))
            except kafka.NO_IDEMPOTENCE as exc:
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
        return await kafka.started(clients.kafka_producer(self.settings, **{**options, "enable_idempotence": False}))

    def _failed(self, window: Window, exc: BaseException) -> None:
        self.stats.failures += 1
        self.healthy = False
        count = self._throttles["failure"].due()
        if count:
            log.warning("kafka delivery failed; records wait in memory and on disk", error=repr(exc),
                        failures=count, backlog=self.backlog, window=len(window.entries), emitter=self.name,
                        bootstrap=self.settings.kafka_bootstrap_servers, topic=self.topic)

    def register_metrics(self, registry: Registry) -> None:
        """Expose the stats on `registry` (rendered from the live counts at each scrape)."""
        registry.metrics.setdefault(f"trilha_emitter_records_{self.name}", StatsMetric(self))

    def _delivered(self, window: Window, rejected: int) -> None:
        self.queue.commit(window)
        self.stats.delivered += len(window.entries) - rejected
        if rejected:
            self.stats.rejected += rejected
            if self._throttles["rejected"].due():
                log.error("kafka refused records for good (too large or corrupt)", rejected=rejected)
        if not self.healthy:
            log.info("kafka delivery resumed", emitter=self.name, backlog=self.backlog)
        self.healthy = True
        self.queue.inflight = None
        self._progress.set()

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await kafka.stop(producer)
