-- QueryId → timestamp, so a lookup by id finds its row through the main table's sorting key
-- instead of scanning every partition (a lookup must not slow down as the table grows).
-- Filled on each shard from that shard's `calls`: sharded like `calls`, so the QueryId lookup stays on one shard.
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS call_ids
(
    company_id LowCardinality(String),
    query_id   String,
    timestamp  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (company_id, query_id, timestamp);

CREATE MATERIALIZED VIEW IF NOT EXISTS call_ids_mv TO call_ids AS
SELECT company_id, query_id, timestamp FROM calls;
