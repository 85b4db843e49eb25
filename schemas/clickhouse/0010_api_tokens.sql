-- API tokens of the query service. A token is `trl_<token_id>_<secret>`; only sha256(secret) is
-- stored, so a copy of this table does not let anyone call the API. Each token belongs to one
-- company (and optionally one of its users): every query it makes is filtered by that company.
--
-- Revoking inserts a new version of the row with `revoked_at` set; readers take the highest
-- version (ORDER BY version DESC LIMIT 1), so a revocation is visible as soon as it is written,
-- before any merge.
-- shard by: cityHash64(token_id)
CREATE TABLE IF NOT EXISTS api_tokens
(
    token_id    String,
    company_id  String,
    user_id     String,
    name        String,
    secret_hash String,
    created_at  DateTime64(3, 'UTC'),
    revoked_at  Nullable(DateTime64(3, 'UTC')),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY token_id;
