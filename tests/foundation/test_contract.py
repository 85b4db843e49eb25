"""The contract types agree with a reference JSON Schema implementation, for message bytes (ingest)
and for records already in Python (the emitter)."""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import fastjsonschema
import msgspec
import orjson
import pytest

from schemas import call_record_schema
from schemas.contract import call_record_decoder, call_record_validator, compile_struct
from schemas.migrations import Layout, for_layout, shard_keys, statements
from services.stack.records import RecordFactory

validate = call_record_validator()
parse, check_formats = call_record_decoder()
# fastjsonschema knows draft 7, where 2020-12's `dependentRequired` was spelled `dependencies`.
reference = fastjsonschema.compile({**call_record_schema(), "dependencies": call_record_schema()["dependentRequired"]})

MUTATIONS: list[tuple[str, Any]] = [
    ("query_id", ""), ("query_id", 12), ("company_id", None), ("timestamp", "2026-13-01T00:00:00Z"),
    ("timestamp", "21/11/2026 10:00"), ("timestamp", "2026-11-21T10:00:00"),
    ("timestamp", "2026-11-21T10:00:00+0000"), ("timestamp", "2026-11-21T10:00:00.1234567891z"),
    ("timestamp", "2026-02-29T10:00:00Z"), ("timestamp", "2026-11-21T24:00:00Z"), ("timestamp", "2026-11-21T10:00Z"),
    ("duration_ms", -1), ("duration_ms", "12"),
    ("ip", "300.1.1.1"), ("ip", "2001:db8::zz"), ("ip", "::1"), ("ip", "10.0.0.1"),
    ("status", 99), ("status", 600), ("status", "200"), ("status", True), ("error", "yes"), ("q", "doc123"),
    ("q", "doc{1},name{MARIA}"), ("q", "doc{1}, x{}"), ("tags", {"k": 1}), ("tags", {"": "v"}), ("tags", []),
    ("schema_version", 2), ("gateway_id", "gw-1"), ("gateway_seq", 7), ("gateway_id", "gw 1"), ("gateway_seq", 0),
    ("request", "a string"), ("result", [1, 2]), ("url", "x" * 9000), ("unknown", 1),
]


def _bytes_ok(record: Any) -> bool:
    """What ingest decides for the record as a Kafka message."""
    try:
        return check_formats(parse(orjson.dumps(record))) is None
    except msgspec.ValidationError:
        return False


def _reference_ok(record: Any) -> bool:
    try:
        reference(record)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@pytest.mark.parametrize(("field", "value"), MUTATIONS)
def test_validator_agrees_with_the_reference(field: str, value: Any) -> None:
    record = RecordFactory(seed=3).record()
    record[field] = value
    if value is None:  # null stands for "not given": required fields are then missing
        del record[field]
    assert (validate(record) is None) == _reference_ok(record) == _bytes_ok(record), validate(record)


def test_a_numbered_record_needs_both_gateway_fields() -> None:
    record = RecordFactory(seed=4).record()
    assert validate({**record, "gateway_id": "gw-1", "gateway_seq": 1}) is None
    both = "send both, or neither"
    assert validate({**record, "gateway_id": "gw-1"}) == f"gateway_id is given without gateway_seq: {both}"
    assert validate({**record, "gateway_seq": 3}) == f"gateway_seq is given without gateway_id: {both}"
    assert not _bytes_ok({**record, "gateway_seq": 3}) and not _reference_ok({**record, "gateway_seq": 3})
    beyond = 2 ** 53  # JSON numbers (JavaScript's) are exact below it
    assert validate({**record, "gateway_id": "gw-1", "gateway_seq": beyond}) is not None


def test_generated_records_are_valid_and_reasons_name_the_field() -> None:
    factory = RecordFactory(seed=5)
    assert all(validate(r) is None for r in factory.records(500))
    broken = factory.record()
    broken["status"] = "200"
    assert validate(broken) == "Expected `int | null`, got `str` - at `$.status`"
    del broken["company_id"], broken["status"]
    assert validate(broken) == "Object missing required field `company_id`"
    assert validate([1]).startswith("record must be a JSON object")
    broken = {**factory.record(), "ip": "10.0.0.300"}
    assert validate(broken) == "ip is not a valid ipv4 or ipv6"


def test_random_corruption_never_disagrees_with_the_reference() -> None:
    rng = random.Random(11)
    good = RecordFactory(seed=9).record()
    values = [None, "", "x", 0, -5, 1.5, True, [], {}, {"a": "b"}, "2026-11-21T10:00:00.000Z", "10.1.2.3"]
    for _ in range(2000):
        record = copy.deepcopy(good)
        record[rng.choice(list(call_record_schema()["properties"]))] = rng.choice(values)
        record = {k: v for k, v in record.items() if v is not None}
        assert (validate(record) is None) == _reference_ok(record) == _bytes_ok(record), record


def test_an_unsupported_schema_keyword_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="not supported"):
        compile_struct({"properties": {"a": {"type": "string", "enum": ["x"]}}})


def test_cluster_migrations_are_replicated_distributed_and_on_cluster() -> None:
    from schemas import clickhouse_migrations

    layout = Layout("prod", replicated=True, database="trilha")
    tables = set(shard_keys())
    assert tables == {"calls", "call_ids", "call_terms", "api_tokens", "report_schedules", "report_runs",
                      "gateway_blocks", "proof_leaves", "proof_nodes", "proof_checkpoints", "proof_erasures"}
    assert all(shard_keys().values()), "every table declares its sharding key"
    for _, sql in clickhouse_migrations():
        for statement in statements(sql):
            if statement.startswith("INSERT INTO"):  # a backfill, run once through the Distributed tables
                assert for_layout(statement, layout) == [statement]
                continue
            for clustered in for_layout(statement, layout):
                assert "ON CLUSTER 'prod'" in clustered
                assert "ENGINE" not in clustered or "ENGINE = Replicated" in clustered \
                    or "ENGINE = Distributed('prod', 'trilha', " in clustered
                assert not re.search(rf"\b(FROM|TO)\s+({'|'.join(tables)})\b(?!_local)", clustered), clustered
                assert "non_replicated_deduplication_window" not in clustered


def test_embedded_shards_get_local_tables_and_distributed_ones_without_on_cluster() -> None:
    statement = "CREATE TABLE IF NOT EXISTS calls (a UInt8) ENGINE = ReplacingMergeTree ORDER BY a"
    local, distributed = for_layout(statement, Layout("trilha_shards"))
    assert local == "CREATE TABLE IF NOT EXISTS calls_local (a UInt8) ENGINE = ReplacingMergeTree ORDER BY a"
    assert distributed == ("CREATE TABLE IF NOT EXISTS calls AS calls_local ENGINE = "
                           "Distributed('trilha_shards', 'default', 'calls_local', cityHash64(query_id))")
    assert for_layout(statement, Layout()) == [statement]
    column = for_layout("ALTER TABLE calls ADD COLUMN IF NOT EXISTS b UInt8", Layout("trilha_shards"))
    assert column == ["ALTER TABLE calls_local ADD COLUMN IF NOT EXISTS b UInt8",
                      "ALTER TABLE calls ADD COLUMN IF NOT EXISTS b UInt8"]


def test_a_replaced_function_and_a_views_new_query_run_on_cluster_against_local_tables() -> None:
    prod, shards = Layout("prod", replicated=True, database="trilha"), Layout("trilha_shards")
    function = "CREATE OR REPLACE FUNCTION f AS (x) -> x"
    assert for_layout(function, prod) == ["CREATE OR REPLACE FUNCTION f ON CLUSTER 'prod' AS (x) -> x"]
    assert for_layout(function, shards) == [function]
    view = "ALTER TABLE call_terms_mv MODIFY QUERY SELECT company_id FROM calls"
    assert for_layout(view, prod) == ["ALTER TABLE call_terms_mv ON CLUSTER 'prod' MODIFY QUERY "
                                      "SELECT company_id FROM calls_local"]
    assert for_layout(view, shards) == ["ALTER TABLE call_terms_mv MODIFY QUERY SELECT company_id FROM calls_local"]
    assert for_layout(view, Layout()) == [view]


def test_a_backfill_writes_each_shards_rows_once() -> None:
    """Applied on each embedded shard: its own local tables. Applied once on a replicated cluster:
    the Distributed tables (local ones would fill only the node the DDL ran on)."""
    backfill = "INSERT INTO call_terms (term) SELECT q AS term FROM calls ARRAY JOIN [1] AS x WHERE 1"
    assert for_layout(backfill, Layout("trilha_shards")) == [
        "INSERT INTO call_terms_local (term) SELECT q AS term FROM calls_local ARRAY JOIN [1] AS x WHERE 1"]
    assert for_layout(backfill, Layout("prod", replicated=True, database="trilha")) == [backfill]
    assert for_layout(backfill, Layout()) == [backfill]
