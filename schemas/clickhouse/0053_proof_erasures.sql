-- LGPD erasures: a record whose fields were deleted on a legal request keeps its leaf; this signed
-- entry (leaf index, leaf hash, when, why) shows its absence as an erasure, not tampering.
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS proof_erasures
(
    company_id LowCardinality(String),
    query_id   String,
    timestamp  DateTime64(3, 'UTC'),
    leaf_index UInt64,
    leaf_hash  String,
    erased_at  String,
    reason     String,
    key_id     String,
    signature  String
)
ENGINE = MergeTree
ORDER BY (query_id, company_id, timestamp);
