-- The scheduler's log of report runs: append-only, one row when an attempt starts ('started') and
-- one with its outcome ('delivered', 'failed' to be retried, or 'abandoned' after the last
-- attempt). A run's identity is (schedule_id, scheduled_for): derived from the schedule's rule,
-- so a restarted scheduler knows which occurrences are done, which failed and which a crash cut
-- short, and never skips or repeats one. The latest row of a run is argMax(…, (attempt, recorded_at)).
-- shard by: cityHash64(schedule_id)
CREATE TABLE IF NOT EXISTS report_runs
(
    company_id    LowCardinality(String),
    schedule_id   String,
    scheduled_for DateTime64(3, 'UTC'),
    attempt       UInt16,
    status        LowCardinality(String),
    recorded_at   DateTime64(6, 'UTC'),
    runner        String,
    period_from   DateTime64(3, 'UTC'),
    period_until  DateTime64(3, 'UTC'),
    rows          UInt64,
    bytes         UInt64,
    target        String,
    error         String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(scheduled_for)
ORDER BY (company_id, schedule_id, scheduled_for, attempt, recorded_at);
