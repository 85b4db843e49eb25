-- Completeness per gateway: a gateway numbers each company's records 1, 2, 3, ... (gateway_id,
-- gateway_seq in the contract); these are stored with the call, null for records nobody numbered.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS gateway_id LowCardinality(Nullable(String)) AFTER schema_version;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS gateway_seq Nullable(UInt64) CODEC(Delta, ZSTD(1)) AFTER gateway_id;

-- Numbers go in blocks of this many (block b holds b·N+1 … (b+1)·N); the query service reads the size
-- from here, so it is said once.
CREATE FUNCTION IF NOT EXISTS trilha_gateway_block_size AS () -> toUInt64(65536);

-- Per (company, gateway, block): the SET of numbers stored (a roaring bitmap). A set, not a count:
-- a record stored twice until merges run, a retried batch pushed through the view again, or one
-- number a buggy gateway gave to two records all count once, so a block never looks more complete
-- than it is and a duplicate cannot hide a missing number. A full block's bitmap is a single run,
-- ~30 bytes (measured), so the watermark is found from every block's cardinality at the cost of a
-- few bytes per 65,536 records, and only blocks missing numbers are read for their gaps.
-- On a cluster each shard's view feeds its own shard from its own `calls` (sharded by QueryId), so a
-- block's set is split across shards and readers merge it (groupBitmapMerge). No column says where
-- a row is, so the key is rand(): a key of columns would let optimize_skip_unused_shards send a
-- read naming them (company, gateway) to one shard only, and half the numbers would look missing.
-- shard by: rand()
CREATE TABLE IF NOT EXISTS gateway_blocks
(
    company_id LowCardinality(String),
    gateway_id LowCardinality(String),
    block      UInt64,
    seqs       AggregateFunction(groupBitmap, UInt64),
    last_call  SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (company_id, gateway_id, block);

CREATE MATERIALIZED VIEW IF NOT EXISTS gateway_blocks_mv TO gateway_blocks AS
SELECT company_id, assumeNotNull(gateway_id) AS gateway_id,
       intDiv(assumeNotNull(gateway_seq) - 1, trilha_gateway_block_size()) AS block,
       groupBitmapState(assumeNotNull(gateway_seq)) AS seqs, max(timestamp) AS last_call
FROM calls
WHERE gateway_id IS NOT NULL AND gateway_seq IS NOT NULL AND gateway_seq > 0
GROUP BY company_id, gateway_id, block;
