"""The emitter numbers each company's records of one gateway 1, 2, 3, ...: across a restart and a
spill the sequence continues, a record re-sent from the spill file keeps its number, no number is
given twice, and the state file survives a killed process and says so when it is lost."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import call_record_validator
from services.gateway.emitter import Emitter
from services.gateway.emitter.sequence import Sequence, new_gateway_id
from services.stack.records import RecordFactory
from tests.gateway.helpers import OwnBroker, read_topic
from tests.stack import Stack, free_port


def _records(seed: int, count: int, company: str) -> list[dict]:
    factory = RecordFactory(seed=seed)
    return [factory.record(company=company) for _ in range(count)]


async def test_numbers_continue_across_restarts_and_spills_and_keep_their_records(stack: Stack,
                                                                                    tmp_path: Path) -> None:
    topic, company = "gw-seq", f"gw-seq-{uuid.uuid4().hex[:6]}"
    down = replace(stack.settings, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=str(tmp_path))
    first, second, third = _records(1, 30, company), _records(2, 20, company), _records(3, 10, company)
    ids = []
    for batch in (first, second):  # Kafka is down: each run keeps its records in the spill file and stops
        emitter = await Emitter(down, name="edge", topic=topic, memory_max_bytes=8 * 1024).start()
        for record in batch:
            assert await emitter.emit(record) is True
        await emitter.close(timeout=1)
        assert emitter.stats.delivered == 0 and emitter.sequence is not None
        ids.append(emitter.sequence.gateway_id)
    broker = OwnBroker(stack, "broker-gw-seq", tmp_path)
    await broker.start(topic)
    try:
        async with Emitter(broker.settings, name="edge", topic=topic) as emitter:
            for record in third:
                assert await emitter.emit(record) is True
            assert await emitter.flush(60)
            ids.append(emitter.sequence.gateway_id if emitter.sequence else "")
        sent = first + second + third
        arrived = await read_topic(broker.settings, topic, {r["query_id"] for r in sent})
    finally:
        broker.stop()
    assert len(set(ids)) == 1 and ids[0].startswith("edge.")
    number = {r["query_id"]: n for n, r in enumerate(sent, start=1)}  # the order they were emitted in
    for record in arrived:  # every copy (a re-sent window included) carries its record's one number
        assert (record["gateway_id"], record["gateway_seq"]) == (ids[0], number[record["query_id"]])
    assert {r["gateway_seq"] for r in arrived} == set(range(1, 61))


async def test_a_dropped_record_leaves_its_number_as_a_gap(stack: Stack, tmp_path: Path) -> None:
    down = replace(stack.settings, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=str(tmp_path))
    emitter = await Emitter(down, name="full", memory_max_bytes=8 * 1024, spill_max_bytes=32 * 1024).start()
    outcomes = [await emitter.emit(r) for r in _records(4, 100, "gw-seq-full")]
    await emitter.close(timeout=1)
    assert outcomes.count(False) > 0 and emitter.sequence is not None
    again = Sequence(tmp_path / "spill" / "full.seq", "full").open()
    assert again.peek("gw-seq-full") == 101 and again.gateway_id == emitter.sequence.gateway_id
    again.close()


def test_the_state_survives_a_killed_process_and_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "g.seq"
    running = Sequence(path, "g").open()
    assert [running.take("a") for _ in range(5)] + [running.take("b")] == [1, 2, 3, 4, 5, 1]
    # no close(): the process is killed; what pwrite wrote is in the file all the same
    with path.open("ab") as raw:
        raw.write(b"0000000000")  # a new company's line cut short by a crash
    after = Sequence(path, "g").open()
    assert (after.gateway_id, after.peek("a"), after.peek("b"), after.peek("c")) == (running.gateway_id, 6, 2, 1)
    assert after.take("c") == 1 and after.take("a") == 6
    after.close()
    os.close(running._fd)  # noqa: SLF001 - the "killed" process's descriptor


def test_a_lost_state_file_means_a_new_gateway_id(tmp_path: Path) -> None:
    path = tmp_path / "g.seq"
    old = Sequence(path, "g").open()
    old.take("a")
    old.close()
    path.unlink()
    new = Sequence(path, "g").open()
    assert new.gateway_id != old.gateway_id and new.peek("a") == 1
    new.close()


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_any_emitter_name_gives_a_gateway_id_the_contract_takes(name: str) -> None:
    record = RecordFactory(seed=1).record()
    gateway = new_gateway_id(name)
    assert call_record_validator()({**record, "gateway_id": gateway, "gateway_seq": 1}) is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=60))
def test_numbers_are_gap_free_per_company_whatever_the_restarts(tmp_path_factory, steps) -> None:  # noqa: ANN001
    """Any interleaving of companies and restarts (True: reopen the file first): each company's
    numbers are 1..n, never one twice."""
    path = tmp_path_factory.mktemp("seq") / "g.seq"
    given_out: dict[str, list[int]] = {}
    sequence = Sequence(path, "g").open()
    for company, restart in steps:
        if restart:
            sequence.close()
            sequence = Sequence(path, "g").open()
        given_out.setdefault(company, []).append(sequence.take(company))
    sequence.close()
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in given_out.values())
