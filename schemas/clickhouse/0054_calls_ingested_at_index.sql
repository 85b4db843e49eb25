-- `trilha checkpoint` reads the records stored since its last checkpoint by `ingested_at`; rows
-- arrive in parts written at about the same time, so a minmax index skips every older granule.
ALTER TABLE calls ADD INDEX IF NOT EXISTS idx_ingested_at ingested_at TYPE minmax GRANULARITY 1;
ALTER TABLE calls MATERIALIZE INDEX idx_ingested_at;
