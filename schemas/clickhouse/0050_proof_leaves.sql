-- The proof tree's leaves: which record is leaf number `leaf_index`, when it was stored and its
-- leaf hash (hex). Written by `trilha checkpoint` before the checkpoint that covers them; a row
-- belongs to the tree only when its `attempt` is a checkpoint's attempt (proof_checkpoints), so a
-- checkpointer killed mid-round leaves rows no reader takes. Sorted by QueryId first: looked up by
-- the record's key, and read across companies only by the checkpointer and `trilha audit`.
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS proof_leaves
(
    leaf_index UInt64,
    company_id LowCardinality(String),
    query_id   String,
    timestamp  DateTime64(3, 'UTC'),
    stored_at  DateTime64(3, 'UTC'),
    leaf_hash  String,
    attempt    UInt64
)
ENGINE = MergeTree
ORDER BY (query_id, company_id, timestamp);
