-- Search terms → calls: one row per input parameter (`q`) and per tag of each call, sorted so a
-- term's calls are read newest first from a contiguous range and paged by (timestamp, query_id).
-- Filled on each shard from that shard's `calls`: a term's rows sit next to their calls' rows.
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS call_terms
(
    company_id LowCardinality(String),
    term       String,
    timestamp  DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    query_id   String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (company_id, term, timestamp, query_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS call_terms_mv TO call_terms AS
SELECT company_id, term, timestamp, query_id
FROM calls
ARRAY JOIN arrayConcat(trilha_q_terms(q), arrayMap((k, v) -> trilha_tag_term(k, v), mapKeys(tags), mapValues(tags)))
    AS term;
