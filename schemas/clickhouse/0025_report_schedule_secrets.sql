-- Each webhook schedule signs its deliveries (X-Trilha-Signature: HMAC-SHA256) with a secret of
-- its own, shown to the tenant once when the schedule is created. The secret must be kept to sign;
-- it is never returned by the API nor logged. Schedules stored before this column have '' and
-- their webhook runs are refused until the schedule is created again.
ALTER TABLE report_schedules ADD COLUMN IF NOT EXISTS signing_secret String DEFAULT '';
