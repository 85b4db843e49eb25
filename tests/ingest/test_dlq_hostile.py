"""A dead letter cannot fail for good because of the message it carries: what the producer or the
broker refuses about one message is sent again smaller (value cut, then no value), a reason text
with unencodable characters is escaped, and only the broker being away is waited out."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from ingest import dlq
from ingest.batcher import RejectedMessage
from ingest.decode import CONTRACT, Rejection
from ingest.dlq import DeadLetters
from ingest.metrics import IngestMetrics
from services.runtime import clients, logs
from tests.ingest.support import header, read_topic
from tests.stack import Stack


def _rejected(value: bytes | None, detail: str = "bad", offset: int = 7) -> RejectedMessage:
    return RejectedMessage("src", 0, offset, 1_700_000_000_000, b"k", value, Rejection(CONTRACT, detail))


class _Broker:
    """A producer whose broker refuses values over `limit` bytes (as a topic's max.message.bytes
    does: the error arrives in the delivery future) and is unreachable for the first `down` sends."""

    def __init__(self, limit: int, down: int = 0) -> None:
        self.limit, self.down = limit, down
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if value is not None and b"boom" in value:
            raise TypeError("the producer cannot take this value")
        if self.down > 0:
            self.down -= 1
            future.set_exception(KafkaConnectionError("broker away"))
        elif len(value or b"") > self.limit:
            future.set_exception(MessageSizeTooLargeError())
        else:
            self.sent.append({"value": value, "key": key, "headers": dict(headers or [])})
            future.set_result(None)
        return future


def _letters(producer: Any) -> DeadLetters:
    return DeadLetters(producer, "src.dlq", IngestMetrics.create(), logs.get("test"))


async def test_a_value_the_broker_refuses_is_dead_lettered_cut_then_without_value() -> None:
    broker = _Broker(limit=100 * 1024)
    items = [_rejected(b"x" * (2 << 20), offset=1), _rejected(b"ok", offset=2)]
    await asyncio.wait_for(_letters(broker).send(items), 10)
    by_offset = {int(s["headers"][dlq.SOURCE_OFFSET]): s for s in broker.sent}
    assert len(by_offset[1]["value"]) == 64 * 1024 and by_offset[1]["headers"][dlq.TRUNCATED] == str(2 << 20).encode()
    assert by_offset[2]["value"] == b"ok" and dlq.TRUNCATED not in by_offset[2]["headers"]

    tiny = _Broker(limit=10)
    await asyncio.wait_for(_letters(tiny).send([_rejected(b"y" * 5000)]), 10)
    [only] = tiny.sent
    assert only["value"] is None and only["key"] is None and only["headers"][dlq.REASON] == CONTRACT.encode()


async def test_an_unreachable_broker_is_waited_out_and_nothing_is_lost() -> None:
    broker = _Broker(limit=1 << 20, down=3)
    await asyncio.wait_for(_letters(broker).send([_rejected(b"a", offset=1), _rejected(b"b", offset=2)]), 30)
    assert sorted(s["value"] for s in broker.sent) == [b"a", b"b"]


async def test_any_other_error_about_one_message_is_not_retried_forever() -> None:
    broker = _Broker(limit=1 << 20)
    await asyncio.wait_for(_letters(broker).send([_rejected(b"boom", offset=1), _rejected(b"fine", offset=2)]), 10)
    assert sorted((s["value"] or b"-") for s in broker.sent) == [b"-", b"fine"]


def test_a_reason_that_is_not_encodable_text_is_escaped_and_bounded() -> None:
    found = dict(dlq.headers(_rejected(b"v", detail="lone \ud800 surrogate " + "z" * 100_000)))
    assert found[dlq.ERROR].startswith(b"lone \\ud800 surrogate") and len(found[dlq.ERROR]) <= 4096


async def test_a_message_over_the_producers_limit_reaches_the_real_dead_letter_topic_cut(stack: Stack) -> None:
    settings = stack.with_topic("dlq-hostile")
    await clients.ensure_topics(settings, settings.kafka_dlq_topic)
    producer = clients.kafka_producer(settings, max_request_size=1 << 20)
    await producer.start()
    try:
        items = [_rejected(b"x" * (3 << 20), detail="big \udcff", offset=1), _rejected(b"small", offset=2)]
        await asyncio.wait_for(DeadLetters(producer, settings.kafka_dlq_topic, IngestMetrics.create(),
                                           logs.get("test")).send(items), 30)
    finally:
        await producer.stop()
    found = await read_topic(settings, settings.kafka_dlq_topic, expected=2)
    by_offset = {int(header(m, dlq.SOURCE_OFFSET)): m for m in found}
    assert len(by_offset[1].value) == 64 * 1024 and header(by_offset[1], dlq.TRUNCATED) == str(3 << 20)
    assert header(by_offset[1], dlq.ERROR) == "big \\udcff"
    assert by_offset[2].value == b"small"
