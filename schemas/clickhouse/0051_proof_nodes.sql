-- Every perfect subtree of the proof tree: node (level, idx) is the hash (hex) of leaves
-- [idx * 2^level, (idx + 1) * 2^level); level 0 are the leaf hashes. Any inclusion or consistency
-- proof folds from O(log n) of them. `attempt` as in proof_leaves.
-- shard by: cityHash64(level, idx)
CREATE TABLE IF NOT EXISTS proof_nodes
(
    level   UInt8,
    idx     UInt64,
    hash    String,
    attempt UInt64
)
ENGINE = MergeTree
ORDER BY (level, idx);
