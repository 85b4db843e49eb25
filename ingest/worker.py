"""`trilha ingest`: consume call records from Kafka and write them into ClickHouse.

Wiring only: the consumer (in the group, with a rebalance listener), the decode → batch → write →
dead-letter → commit pipeline, signals, the /metrics server and a periodic progress line. Several
processes with the same group share the topic's partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from ingest.batcher import Batcher
from ingest.decode import Decoder
from ingest.dlq import DeadLetters
from ingest.dlq_limit import DeadLetterLimit, DeadLetterLimitExceeded
from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from ingest.write_step import WriteFailed, WriteStep
from ingest.writer import Writer
from services.runtime import clients, logs
from services.runtime.netcheck import require_clickhouse, require_kafka
from services.runtime.procs import EXIT_DO_NOT_RESTART
from services.runtime.running import until_signalled
from services.runtime.settings import ConfigError, Settings

_PROGRESS_EVERY_S = 10.0
# Records decoded per poll: ~25 ms of work. The insert streams its body and reads its answer on the
# same event loop, so the loop must come back often or the insert waits for the decoding.
_POLL_RECORDS = 1_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", help="overrides TRILHA_KAFKA_TOPIC")
    parser.add_argument("--dlq-topic", help="overrides TRILHA_KAFKA_DLQ_TOPIC (with --topic: default TOPIC.dlq)")
    parser.add_argument("--group", help="overrides TRILHA_KAFKA_GROUP")


def command(args: argparse.Namespace, settings: Settings) -> int:
    dlq = args.dlq_topic or (f"{args.topic}.dlq" if args.topic else settings.kafka_dlq_topic)
    settings = replace(settings, kafka_topic=args.topic or settings.kafka_topic, kafka_dlq_topic=dlq,
                       kafka_group=args.group or settings.kafka_group)
    logs.configure(settings.log_level, settings.log_format, component="ingest")
    return asyncio.run(run(settings))


def consumer_options(settings: Settings) -> dict[str, Any]:
    """Consumer tuning shared with the benchmark's raw drain, so both read the topic the same way."""
    return {
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "fetch_max_wait_ms": 100,
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 2_000,
    }


class _Listener(ConsumerRebalanceListener):
    """Hands revocations to the pipeline (write and commit, or drop to re-read)."""

    def __init__(self, pipeline: Pipeline, log: Any) -> None:
        self.pipeline, self.log = pipeline, log

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            await self.pipeline.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))


async def run(settings: Settings) -> int:
    """The worker's whole life: start-up checks, the poll loop, a bounded shutdown."""
    log = logs.get("ingest")
    await require_kafka(settings)
    await require_clickhouse(settings)
    await clients.ensure_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    client = await clients.clickhouse(settings)
    try:
        if not int(await client.command("EXISTS TABLE calls")):
            raise ConfigError(f"table `calls` is missing in ClickHouse database {settings.clickhouse_database!r}: "
                              "run `trilha migrate` first")
        return await _serve(settings, client, log)
    finally:
        await client.close()


async def _serve(settings: Settings, client: Any, log: Any) -> int:
    metrics = IngestMetrics.create()
    producer = clients.kafka_producer(settings)
    consumer = clients.kafka_consumer(settings, **consumer_options(settings))
    batcher = Batcher(Decoder(settings.max_record_bytes).decode, settings.batch_max_rows, settings.batch_max_bytes,
                      settings.batch_max_age_s)
    writer = Writer(client, settings.kafka_topic, metrics, log, insert_timeout_s=settings.insert_timeout_s,
                    max_rows=settings.batch_max_rows)
    limit = DeadLetterLimit(settings.ingest_dlq_limit_ratio, settings.ingest_dlq_limit_window)
    step = WriteStep(consumer, writer, DeadLetters(producer, settings.kafka_dlq_topic, metrics, log), limit, metrics,
                     log)
    pipeline = Pipeline(consumer, batcher, step, metrics, log, max_poll_records=_POLL_RECORDS,
                        revoke_timeout_s=settings.shutdown_timeout_s)
    async with until_signalled(settings, metrics.registry, log) as stop:
        return await _consume(settings, pipeline, consumer, producer, stop, metrics, log)


async def _consume(settings: Settings, pipeline: Pipeline, consumer: Any, producer: Any, stop: asyncio.Event,
                   metrics: IngestMetrics, log: Any) -> int:
    await producer.start()
    await consumer.start()
    consumer.subscribe([settings.kafka_topic], listener=_Listener(pipeline, log))
    log.info("ingest started", topic=settings.kafka_topic, group=settings.kafka_group,
             dlq=settings.kafka_dlq_topic, batch_rows=settings.batch_max_rows, batch_bytes=settings.batch_max_bytes,
             batch_age_s=settings.batch_max_age_s)
    progress = asyncio.create_task(_report_progress(metrics, log))
    code = 0
    try:
        await pipeline.run(stop)
    except DeadLetterLimitExceeded as exc:
        log.error("INGEST STOPPED: dead-letter limit exceeded", reason=str(exc), exit_code=EXIT_DO_NOT_RESTART)
        code = EXIT_DO_NOT_RESTART
    except WriteFailed as exc:
        log.error("ingest stopping: a batch cannot be written", error=str(exc))
        code = 1
    finally:
        code = await _shutdown(settings, pipeline, consumer, producer, log, code)
        progress.cancel()
    return code


async def _shutdown(settings: Settings, pipeline: Pipeline, consumer: Any, producer: Any, log: Any, code: int) -> int:
    """Stop fetching, write and commit what is held, leave the group: all within shutdown_timeout_s."""
    started = time.monotonic()
    if code == 0:
        flushed = await pipeline.close(settings.shutdown_timeout_s)
    else:
        flushed = False
        await pipeline.commit()  # what was written before the failure
    remaining = max(1.0, settings.shutdown_timeout_s - (time.monotonic() - started))
    with contextlib.suppress(Exception):
        await asyncio.wait_for(consumer.stop(), remaining)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 5)
    log.info("ingest stopped", flushed=flushed, seconds=round(time.monotonic() - started, 2))
    return code


async def _report_progress(metrics: IngestMetrics, log: Any) -> None:
    last_rows, last_time = 0.0, time.monotonic()
    while True:
        await asyncio.sleep(_PROGRESS_EVERY_S)
        rows, now = metrics.rows_written.value(), time.monotonic()
        if rows != last_rows:
            log.info("ingest progress", rows_written=int(rows),
                     rows_per_s=round((rows - last_rows) / (now - last_time)),
                     dead_lettered=int(sum(metrics.dead_lettered.values.values())))
        last_rows, last_time = rows, now
