"""The one-round-trip proof read (`ledger.proof_reads`) asks ClickHouse for exactly the stored
subtrees an inclusion path folds from: the set its SQL computes, run in the real ClickHouse, is
the one `merkle` derives from RFC 9162's PATH, for any leaf of any tree size."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.proofs import ledger, merkle

SIZES = st.integers(1, 2**40) | st.integers(1, 300)


@given(st.data(), st.lists(SIZES, min_size=1, max_size=8))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
async def test_the_sql_asks_for_exactly_the_subtrees_a_path_folds_from(ch, data: st.DataObject,  # noqa: ANN001
                                                                       sizes: list[int]) -> None:
    for size in sizes:
        leaves = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4, unique=True))
        outside = data.draw(st.integers(size, size + 5))  # a leaf row beyond the tree asks for nothing
        result = await ch.query(f"SELECT {ledger.path_nodes_sql('{indexes:Array(UInt64)}', '{size:UInt64}')}",
                                parameters={"indexes": [*leaves, outside], "size": size})
        got = {(int(level), int(idx)) for level, idx in result.result_rows[0][0]}
        want = set().union(*(merkle.needed(merkle.inclusion_ranges(m, size)) | {(0, m)} for m in leaves))
        assert got == want, (size, leaves)
