-- Scheduled reports ("Agendar relatório"), per company. Each change writes a new version of the
-- schedule's row; deleting writes a version with deleted = 1. Readers take argMax(…, version)
-- per (company_id, schedule_id), so a not-yet-merged older version never wins.
-- `spec` is the normalised JSON the API accepted (filters, recurrence, range, format, destination).
-- shard by: cityHash64(schedule_id)
CREATE TABLE IF NOT EXISTS report_schedules
(
    company_id  LowCardinality(String),
    schedule_id String,
    version     DateTime64(6, 'UTC'),
    deleted     UInt8,
    created_at  DateTime64(3, 'UTC'),
    created_by  String,
    spec        String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (company_id, schedule_id);
