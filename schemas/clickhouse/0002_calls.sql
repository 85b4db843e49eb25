-- One row per API call. Column names are the call-record contract's property names
-- (schemas/call_record.v1.json), so ingest inserts records as they arrive (JSONEachRow).
--
-- Sorted by (company_id, timestamp, query_id): every read is within one company, report filters
-- and paging walk a time range newest first, and (timestamp, query_id) is the unique keyset.
-- ReplacingMergeTree collapses a record written twice (same key) on merge; until then every reader
-- de-duplicates by that key (query/calls/), so a duplicate not yet merged is never shown. Inserts
-- carry a deterministic deduplication token per batch, kept for the last 10,000 inserts.
-- Monthly partitions: a few hundred over decades, for data management (retention, moves).
-- Sharded (on a cluster) by the QueryId's hash: a big company spreads over every shard, a QueryId
-- lookup reaches one shard, and every copy of one record lands on the same shard, where
-- ReplacingMergeTree collapses it (and readers de-duplicate it until then).
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS calls
(
    company_id           LowCardinality(String),
    timestamp            DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    query_id             String,
    duration_ms          Float64,
    client_id            String,
    client_name          String,
    client_username      String,
    authorization_id     String,
    authorization_name   String,
    user_id              String,
    ip                   IPv6,
    server               LowCardinality(String),
    method               LowCardinality(String),
    url                  String CODEC(ZSTD(1)),
    resource             LowCardinality(String),
    event                LowCardinality(String),
    status               UInt16,
    error                Bool DEFAULT status >= 400,
    error_message        String CODEC(ZSTD(1)),
    q                    String CODEC(ZSTD(1)),
    tags                 Map(LowCardinality(String), String),
    request              String CODEC(ZSTD(1)),
    result               String CODEC(ZSTD(1)),
    schema_version       UInt8 DEFAULT 1,
    ingested_at          DateTime64(3, 'UTC') DEFAULT now64(3),
    client_folded        String MATERIALIZED trilha_fold(concat(client_name, ' ', client_username)),
    authorization_folded String MATERIALIZED trilha_fold(authorization_name),
    INDEX idx_client_id client_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_authorization_id authorization_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_ip ip TYPE minmax GRANULARITY 1,
    INDEX idx_status status TYPE minmax GRANULARITY 1,
    INDEX idx_resource resource TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_query_id query_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (company_id, timestamp, query_id)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;
