"""Every process reads its configuration from `TRILHA_*` environment variables.

One set of variables describes the whole stack, so the same processes run against the embedded
broker and ClickHouse server or against a real Kafka and ClickHouse by changing the
environment only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from services.runtime.logs import SECRET_WORDS


class ConfigError(ValueError):
    """A setting is wrong; the message says which variable and what to put in it."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Field `x_y` is read from `TRILHA_X_Y`."""

    kafka_bootstrap_servers: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
    kafka_topic: str = _setting("api-calls", "topic the gateways publish call records to")
    kafka_dlq_topic: str = _setting("api-calls.dlq", "dead-letter topic for records ingest rejects")
    kafka_group: str = _setting("trilha-ingest", "consumer group of the ingest workers")
    kafka_partitions: int = _setting(4, "partitions when Trilha creates the topic itself")
    kafka_idempotence: bool = _setting(True, "idempotent producers (the embedded broker lacks it)")
    clickhouse_url: str = _setting("http://127.0.0.1:8123", "ClickHouse HTTP(S) URL")
    clickhouse_tcp_port: int = _setting(9000, "embedded ClickHouse: port of its native TCP interface")
    clickhouse_shards: int = _setting(1, "embedded ClickHouse: servers forming one sharded cluster (ports +0, +1, ...)")
    clickhouse_user: str = _setting("default", "ClickHouse user")
    clickhouse_password: str = _setting("", "ClickHouse password")
    clickhouse_database: str = _setting("default", "ClickHouse database holding Trilha's tables")
    clickhouse_cluster: str = _setting("", "real cluster's name: Replicated* + Distributed tables, DDL ON CLUSTER")
    query_host: str = _setting("127.0.0.1", "address the query service listens on")
    query_port: int = _setting(8080, "port of the query service")
    query_token_rate: float = _setting(50.0, "query: requests per second one API token may make (token bucket)")
    query_token_burst: int = _setting(100, "query: requests one API token may make at once before the rate applies")
    query_auth_failure_rate: float = _setting(1.0, "query: failed authentications per second from one address")
    query_auth_failure_burst: int = _setting(20, "query: failed authentications from one address before 429s")
    query_unknown_token_s: float = _setting(1.0, "query: the set of token ids is refreshed at most this often "
                                                 "(a new token's first request waits at most this long)")
    query_searches_per_company: int = _setting(1, "query: q/Tags searches one company may run at once")
    query_search_budget_s: float = _setting(10.0, "query: time one q/Tags search may take in ClickHouse")
    query_slot_wait_s: float = _setting(2.0, "query: a search or report query waits this long for a slot, then 429")
    query_exports_per_company: int = _setting(1, "query: CSV exports one company may stream at once (429 beyond)")
    data_dir: str = _setting("./var", "embedded stack's data, pid files and local state")
    cursor_secret: str = _setting("", "key that signs paging cursors (random per data dir if empty)")
    proofs: bool = _setting(True, "proofs: `trilha up` runs `trilha checkpoint` (signed Merkle checkpoints)")
    checkpoint_interval_s: float = _setting(60.0, "proofs: seconds between signed checkpoints")
    checkpoint_lag_s: float = _setting(2.0, "proofs: a checkpoint covers records stored at least this long ago")
    checkpoint_overlap_s: float = _setting(300.0, "proofs: seconds before the last horizon re-read for late rows")
    checkpoint_keys_dir: str = _setting("", "proofs: directory of the signing keys (default <data_dir>/keys)")
    batch_max_rows: int = _setting(100_000, "ingest: rows that make a batch full")
    batch_max_bytes: int = _setting(128 * 1024 * 1024, "ingest: bytes that make a batch full")
    batch_max_age_s: float = _setting(1.0, "ingest: seconds after which a batch is flushed anyway")
    max_record_bytes: int = _setting(1024 * 1024, "ingest: larger records go to the dead-letter topic")
    insert_timeout_s: float = _setting(30.0, "ingest: one insert may take this long before it is retried")
    ingest_dlq_limit_ratio: float = _setting(0.5, "ingest: stop (exit 3) when more than this share of the "
                                             "last ingest_dlq_limit_window records is rejected (1: never)")
    ingest_dlq_limit_window: int = _setting(10_000, "ingest: records the dead-letter limit is judged over")
    metrics_port: int = _setting(0, "port for /metrics of ingest and scheduler (0: none)")
    metrics_host: str = _setting("127.0.0.1", "address the /metrics server listens on")
    shutdown_timeout_s: float = _setting(15.0, "ingest: on SIGTERM, time to write and commit what it holds")
    reports_dir: str = _setting("", "scheduled reports: base of directory destinations (default <data_dir>/reports)")
    scheduler_tick_s: float = _setting(20.0, "scheduled reports: seconds between looks for due runs")
    report_max_attempts: int = _setting(5, "scheduled reports: attempts of one run before it is abandoned")
    report_retry_s: float = _setting(30.0, "scheduled reports: first retry delay, doubled per attempt")
    report_schedules_max: int = _setting(50, "scheduled reports: schedules one company may have")
    report_runs_max: int = _setting(4, "scheduled reports: runs the scheduler makes at once, all companies")
    report_company_runs_max: int = _setting(2, "scheduled reports: runs at once for one company (keep it below "
                                            "report_runs_max, so one company never holds every slot)")
    webhook_allow: str = _setting("", "webhooks: CIDRs and host names that may be reached although not public, "
                                  "comma-separated (plain http is allowed for them)")
    webhook_allow_http: bool = _setting(False, "webhooks: allow plain http:// to public destinations too")
    webhook_connect_timeout_s: float = _setting(5.0, "webhooks: time to connect to a receiver")
    webhook_timeout_s: float = _setting(30.0, "webhooks: time for a whole delivery, connect to answer")
    emitter_memory_max_bytes: int = _setting(64 * 1024 * 1024, "emitter: records held in memory while Kafka lags")
    emitter_spill_max_bytes: int = _setting(1024 ** 3, "emitter: disk budget of the spill file; beyond it, drops")
    emitter_flush_timeout_s: float = _setting(10.0, "emitter: on shutdown, time to deliver before spilling")
    emitter_compression: str = _setting("zstd", "emitter: Kafka compression, zstd or lz4")
    gateway_company_header: str = _setting("X-Trilha-Company", "gateway: request header naming the company")
    gateway_query_id_header: str = _setting("X-Query-Id", "gateway: response header carrying the QueryId")
    gateway_trusted_proxies: str = _setting("", "gateway: CIDRs whose X-Forwarded-For is believed, comma-separated")
    gateway_company_trusted: str = _setting("", "gateway: CIDRs of direct peers (upstream proxies) whose company "
                                            "header is believed; from anyone else it is ignored")
    gateway_body_max_bytes: int = _setting(64 * 1024, "gateway: request/result bytes kept in a record")
    gateway_redact: str = _setting(",".join(SECRET_WORDS),
                                   "gateway: field names (substrings) whose values are redacted, comma-separated")
    gateway_server_name: str = _setting("", "gateway: server name in records (default: host name)")
    log_level: str = _setting("info", "debug, info, warning or error")
    log_format: str = _setting("console", "console or json")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read `TRILHA_*` variables; a value that does not parse is a ConfigError naming it."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = env_name(f.name)
            if var in env:
                values[f.name] = _parse(var, env[var], type(f.default))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in a child process."""
        return {env_name(f.name): _render(getattr(self, f.name)) for f in fields(self)}


def env_name(field_name: str) -> str:
    return f"TRILHA_{field_name.upper()}"


_YES = frozenset({"1", "true", "yes", "y", "on", "sim", "s"})
_NO = frozenset({"0", "false", "no", "n", "off", "nao", "não"})


def yes_no(word: str) -> bool | None:
    """The one reading of a yes/no word, for settings and request parameters alike: true/false,
    1/0, yes/no, on/off and the Portuguese sim/não (any case, with or without the accent); None
    for anything else, so the caller says what it expected."""
    lowered = word.strip().lower()
    return True if lowered in _YES else False if lowered in _NO else None


def _parse(var: str, raw: str, kind: type) -> Any:
    if kind is bool:
        value = yes_no(raw)
        if value is None:
            raise ConfigError(f"{var}={raw!r} is not a boolean: use true or false")
        return value
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from None


def _render(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
