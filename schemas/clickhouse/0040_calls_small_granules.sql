-- `calls` with granules of at most ~1 MiB instead of 8,192 rows, so reading one call decompresses
-- ~1 MiB of its columns instead of 8,192 whole rows (~8 MB of `request`/`result` at 1 KB a row).
--
-- Why: every read of `calls` goes by its sorting key to a handful of rows (a QueryId lookup: one;
-- a `q`/Tags page: 50 spread over time; a report page: 30 newest), but ClickHouse reads whole
-- granules. Adaptive granularity (`index_granularity_bytes`) cuts a granule when its rows reach
-- 1 MiB, so ~1 KB rows get ~1,000 rows a granule and narrow ones keep up to 8,192. Why 1 MiB and
-- not less: measured on this schema (insert then merge everything, ClickHouse's own CPU
-- accounting), 256 KiB granules made merges cost ~3-4 µs a row more (~+50%), 1 MiB ~+0.5-1 µs,
-- while the lookups' time on one machine is dominated by per-column and per-query costs, not by
-- the granule's size (README "Benchmarks": the figures and the commands behind them).
--
-- `index_granularity_bytes` is fixed when a table is created, so the table is rebuilt and its rows
-- carried over: a new table like `calls` (same columns, codecs, indexes, engine, key), every row
-- copied, then the two swapped by name (the materialized views and the Distributed table name
-- `calls`, so they follow), the old one dropped. Run `trilha migrate` with ingest stopped, as
-- `trilha up` and deploy/ do; should a writer run meanwhile anyway, the rows it wrote to the old
-- table after the copy (ingested later than the newest row copied) are copied after the swap. With
-- ingest stopped that last step copies nothing, so no row is written twice. A run cut short after
-- the swap and repeated swaps back and copies again: no row is lost, but `calls` keeps its old
-- granules until it is rebuilt again.
-- shard by: cityHash64(query_id)
CREATE TABLE IF NOT EXISTS calls_regranulated AS calls
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (company_id, timestamp, query_id)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192,
         index_granularity_bytes = 1048576;

INSERT INTO calls_regranulated SELECT * FROM calls
SETTINGS parallel_distributed_insert_select = 2, insert_deduplicate = 0;

EXCHANGE TABLES calls AND calls_regranulated;

INSERT INTO calls SELECT * FROM calls_regranulated
WHERE ingested_at > (SELECT max(ingested_at) FROM calls
                     WHERE ingested_at <= (SELECT max(ingested_at) FROM calls_regranulated))
SETTINGS parallel_distributed_insert_select = 2, insert_deduplicate = 0;

DROP TABLE IF EXISTS calls_regranulated SYNC;
