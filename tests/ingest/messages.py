"""Kafka messages for the ingest tests, as aiokafka hands them to the worker."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord


def message(value: bytes | dict[str, Any] | None, offset: int, partition: int = 0, topic: str = "t",
            key: bytes | None = None) -> ConsumerRecord:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=1_700_000_000_000 + offset,
                          timestamp_type=0, key=key, value=raw, checksum=None,
                          serialized_key_size=len(key or b""), serialized_value_size=len(raw or b""), headers=())
