-- Signed checkpoints (tree heads), one per round of `trilha checkpoint`, chained by `prev`.
-- `attempt` names the round's leaves and nodes. Append-only: `trilha audit` reports one that is
-- rewritten, missing, or does not extend its predecessor.
-- shard by: cityHash64(seq)
CREATE TABLE IF NOT EXISTS proof_checkpoints
(
    seq       UInt64,
    size      UInt64,
    root      String,
    issued_at String,
    horizon   String,
    prev      String,
    key_id    String,
    signature String,
    attempt   UInt64
)
ENGINE = MergeTree
ORDER BY seq;
