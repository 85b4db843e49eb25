-- Ingest retries a batch with the same insert_deduplication_token. ClickHouse then skips the block
-- in `calls`, but still pushes it through the materialized views (deduplicate_blocks_in_dependent_
-- materialized_views=1 de-duplicates there only if the target table keeps a window of its own), so
-- the lookup tables get the same window as `calls`: a retried insert adds nothing anywhere.
ALTER TABLE call_ids MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE call_terms MODIFY SETTING non_replicated_deduplication_window = 10000;
