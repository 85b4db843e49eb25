"""Offsets: only the contiguous written prefix of a partition is ever committable."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from ingest.offsets import OffsetTracker

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_a_later_batch_written_first_does_not_move_the_commit_past_an_earlier_one() -> None:
    tracker = OffsetTracker()
    tracker.register(1, {P0: (0, 99), P1: (0, 9)})
    tracker.register(2, {P0: (100, 199)})
    tracker.done(2)
    assert tracker.to_commit() == {}
    tracker.done(1)
    assert tracker.to_commit() == {P0: 200, P1: 10}


def test_commits_are_reported_once_and_only_for_assigned_partitions() -> None:
    tracker = OffsetTracker()
    tracker.register(1, {P0: (5, 7), P1: (3, 3)})
    tracker.done(1)
    assert tracker.to_commit([P1]) == {P1: 4}
    tracker.committed({P1: 4})
    assert tracker.to_commit() == {P0: 8}


def test_forgetting_a_revoked_partition_keeps_the_others() -> None:
    tracker = OffsetTracker()
    tracker.register(1, {P0: (0, 9), P1: (0, 9)})
    tracker.forget([P0])
    tracker.done(1)
    assert tracker.to_commit() == {P1: 10}
    assert tracker.pending() == 0


def test_a_range_registered_out_of_read_order_is_a_bug_not_a_silent_skip() -> None:
    tracker = OffsetTracker()
    tracker.register(1, {P0: (10, 19)})
    with pytest.raises(ValueError):
        tracker.register(2, {P0: (5, 30)})


def test_reset_forgets_everything_uncommitted() -> None:
    tracker = OffsetTracker()
    tracker.register(1, {P0: (0, 9)})
    tracker.reset()
    tracker.done(1)
    assert tracker.to_commit() == {} and tracker.pending() == 0
