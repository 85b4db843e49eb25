"""The ingest worker's metrics, one place, so every stage updates the same names.

Updated per fetched chunk or per batch, never per record: the hot loop stays free of bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.runtime.metrics import Counter, Gauge, Histogram, Registry

_ROW_BUCKETS = (10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
_BYTE_BUCKETS = (1e4, 1e5, 1e6, 4e6, 16e6, 32e6, 64e6, 128e6)
_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class IngestMetrics:
    registry: Registry
    rows_in: Counter
    bytes_in: Counter
    rows_written: Counter
    bytes_written: Counter
    batch_rows: Histogram
    batch_bytes: Histogram
    batch_age: Histogram
    insert_latency: Histogram
    insert_retries: Counter
    dead_lettered: Counter
    lag: Gauge
    paused: Gauge
    commits: Counter

    @classmethod
    def create(cls, registry: Registry | None = None) -> IngestMetrics:
        r = registry or Registry()
        return cls(
            registry=r,
            rows_in=r.counter("trilha_ingest_records_in_total", "messages read from Kafka"),
            bytes_in=r.counter("trilha_ingest_bytes_in_total", "bytes of message values read from Kafka"),
            rows_written=r.counter("trilha_ingest_rows_written_total", "rows ClickHouse acknowledged"),
            bytes_written=r.counter("trilha_ingest_bytes_written_total", "bytes of rows ClickHouse acknowledged"),
            batch_rows=r.histogram("trilha_ingest_batch_rows", "rows per written batch", _ROW_BUCKETS),
            batch_bytes=r.histogram("trilha_ingest_batch_bytes", "bytes per written batch", _BYTE_BUCKETS),
            batch_age=r.histogram("trilha_ingest_batch_age_seconds",
                                  "first message read to batch acknowledged", _AGE_BUCKETS),
            insert_latency=r.histogram("trilha_ingest_insert_seconds", "duration of one successful insert"),
            insert_retries=r.counter("trilha_ingest_insert_retries_total", "failed insert attempts, by kind"),
            dead_lettered=r.counter("trilha_ingest_dead_lettered_total", "records sent to the dead-letter topic"),
            lag=r.gauge("trilha_ingest_consumer_lag", "messages behind the partition's high watermark"),
            paused=r.gauge("trilha_ingest_paused", "1 while fetching is paused by backpressure"),
            commits=r.counter("trilha_ingest_commits_total", "offset commits after written batches"),
        )
