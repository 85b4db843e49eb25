"""Batching: full by rows, by bytes or by age; every message read is accounted for, in order."""

from __future__ import annotations

from aiokafka import TopicPartition

from ingest.batcher import Batcher
from ingest.decode import CONTRACT, NOT_JSON, Decoder
from services.stack.records import RecordFactory
from tests.ingest.messages import message

TP = TopicPartition("t", 0)
FACTORY = RecordFactory(seed=11)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _batcher(rows: int = 1000, nbytes: int = 1 << 30, age: float = 1.0, clock: Clock | None = None) -> Batcher:
    return Batcher(Decoder(1 << 20), rows, nbytes, age, clock=clock or Clock())


def test_a_batch_is_sealed_exactly_at_the_row_limit_and_the_rest_starts_the_next() -> None:
    batcher = _batcher(rows=10)
    msgs = [message(FACTORY.record(), offset) for offset in range(25)]
    sealed = batcher.add(TP, msgs)
    assert [len(b.bodies) for b in sealed] == [10, 10]
    assert [b.ranges[TP] for b in sealed] == [[0, 9], [10, 19]]
    assert batcher.filling is not None and batcher.filling.ranges[TP] == [20, 24]
    assert [m.offset for b in sealed for m in b.origins] == list(range(20))


def test_a_batch_is_sealed_by_bytes() -> None:
    msgs = [message(FACTORY.record(), offset) for offset in range(10)]
    limit = sum(len(m.value) + 1 for m in msgs[:3])
    sealed = _batcher(nbytes=limit).add(TP, msgs)
    assert len(sealed[0].bodies) == 3 and sealed[0].nbytes == limit


def test_a_batch_is_due_by_age_from_its_first_message() -> None:
    clock = Clock()
    batcher = _batcher(age=1.0, clock=clock)
    assert not batcher.due() and batcher.time_left() is None
    batcher.add(TP, [message(FACTORY.record(), 0)])
    clock.now += 0.4
    assert not batcher.due() and abs(batcher.time_left() - 0.6) < 1e-9
    clock.now += 0.6
    assert batcher.due()
    assert len(batcher.seal().bodies) == 1 and batcher.filling is None


def test_rejected_messages_are_kept_with_their_origin_and_still_count_in_the_offset_range() -> None:
    batcher = _batcher()
    msgs = [message(FACTORY.record(), 0, partition=0, key=b"k0"), message(b"{oops", 1, key=b"k1"),
            message({"query_id": "x"}, 2), message(FACTORY.record(), 3)]
    batcher.add(TP, msgs)
    batch = batcher.seal()
    assert len(batch.bodies) == 2 and batch.ranges[TP] == [0, 3]
    assert [(r.offset, r.key, r.value, r.rejection.reason) for r in batch.rejected] == [
        (1, b"k1", b"{oops", NOT_JSON), (2, None, msgs[2].value, CONTRACT)]
    assert batch.messages == 4


def test_partitions_keep_separate_ranges_in_one_batch() -> None:
    batcher = _batcher()
    other = TopicPartition("t", 1)
    batcher.add(TP, [message(FACTORY.record(), o) for o in (5, 6)])
    batcher.add(other, [message(FACTORY.record(), o, partition=1) for o in (40, 41, 42)])
    batcher.add(TP, [message(FACTORY.record(), 7)])
    assert batcher.seal().ranges == {TP: [5, 7], other: [40, 42]}
