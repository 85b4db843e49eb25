"""Completeness per gateway, read from `gateway_blocks` (migration 0060) in two queries.

1. The summary: per gateway of the caller's company, each block's set of numbers merged across
   parts and shards (`groupBitmapMergeState`), reduced to one row per gateway: the highest number,
   how many distinct numbers are stored, the blocks short of numbers and, only when a block is
   missing altogether, the list of present blocks. A full block's set is one run of ~30 bytes, so
   this reads a few bytes per 65,536 records.
2. The gaps: only short blocks' sets are compared with the numbers they should hold, in
   ClickHouse (`bitmapAndnot`), which sends back ranges, at most `max_gaps` per block, and only
   the first 2 * max_gaps + 2 short blocks of a gateway (enough for its first max_gaps gaps), so
   the cost of an answer does not grow with how broken a gateway's history is.

Every query is a `TenantScope` statement (the caller's company, bound, checked by the tenant
guard); a gateway's numbers are counted per company, so a company sees its own records' sequence
and nothing of another's.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access import tenant
from query.access.tenant import TenantScope
from query.calls.keyset import instant
from query.gateways.gaps import Blocks, Completeness, Range, assemble


def _per_block(only: str = "1") -> str:
    """Each block's set, merged across parts and shards, for the company (and gateway) asked."""
    return ("SELECT gateway_id, block, groupBitmapMergeState(seqs) AS s, max(last_call) AS last_call "
            "FROM gateway_blocks WHERE company_id = {company:String} "
            f"AND ({{gateway:String}} = '' OR gateway_id = {{gateway:String}}) AND {only} "
            "GROUP BY gateway_id, block")


SUMMARY = f"""
SELECT gateway_id, any(n) AS size, max(top) AS highest, sum(cnt) AS stored,
       toUnixTimestamp64Milli(max(newest)) AS last_call_ms,
       arraySort(groupArrayIf(block, cnt < least(n, top_all - block * n))) AS short,
       if(count() = intDiv(max(top) - 1, any(n)) + 1, [], arraySort(groupArray(block))) AS present
FROM (
    SELECT gateway_id, block, bitmapCardinality(s) AS cnt, bitmapMax(s) AS top, last_call AS newest,
           trilha_gateway_block_size() AS n, max(bitmapMax(s)) OVER (PARTITION BY gateway_id) AS top_all
    FROM ({_per_block()})
)
GROUP BY gateway_id
ORDER BY gateway_id
"""

# The numbers a short block should hold, minus those it holds, as ranges: a range starts where
# the number before it is not missing and ends where the number after it is not.
GAPS = f"""
SELECT gateway_id, block, arraySlice(arrayZip(starts, ends), 1, {{cap:UInt32}}) AS ranges,
       length(starts) > {{cap:UInt32}} AS more
FROM (
    SELECT gateway_id, block, missing,
           arrayFilter((x, i) -> i = 1 OR missing[i - 1] + 1 != x, missing, arrayEnumerate(missing)) AS starts,
           arrayFilter((x, i) -> i = length(missing) OR missing[i + 1] != x + 1, missing,
                       arrayEnumerate(missing)) AS ends
    FROM (
        SELECT gateway_id, block,
               bitmapToArray(bitmapAndnot(
                   bitmapBuild(range(toUInt64(block * trilha_gateway_block_size() + 1),
                                     toUInt64(least((block + 1) * trilha_gateway_block_size(),
                                                    {{tops:Array(UInt64)}}[indexOf({{gateways:Array(String)}},
                                                                                   gateway_id)]) + 1))),
                   s)) AS missing
        FROM ({_per_block("(gateway_id, block) IN {wanted:Array(Tuple(String, UInt64))}")})
    )
)
"""


async def completeness(ch: AsyncClient, scope: TenantScope, max_gaps: int, gateway: str = "") -> list[Completeness]:
    """Every gateway of the scope's company (or the one named), by gateway id."""
    params: dict[str, Any] = {"gateway": gateway}
    summary = (await tenant.query(ch, scope.statement(SUMMARY, params))).named_results()
    rows = [(row, Blocks(row["size"], row["highest"], row["stored"], row["short"], row["present"] or None))
            for row in summary]
    found = await _gaps(ch, scope, params, [(row["gateway_id"], blocks) for row, blocks in rows], max_gaps)
    return [assemble(row["gateway_id"], blocks, found.get(row["gateway_id"], {}), max_gaps,
                     instant(row["last_call_ms"])) for row, blocks in rows]


async def _gaps(ch: AsyncClient, scope: TenantScope, params: dict[str, Any], gateways: list[tuple[str, Blocks]],
                max_gaps: int) -> dict[str, dict[int, tuple[list[Range], bool]]]:
    short = [(gid, blocks) for gid, blocks in gateways if blocks.short]
    if not short:
        return {}
    query = {**params, "cap": max_gaps, "gateways": [gid for gid, _ in short],
             "wanted": [(gid, block) for gid, blocks in short for block in blocks.to_read(max_gaps)],
             "tops": [blocks.highest for _, blocks in short]}
    found: dict[str, dict[int, tuple[list[Range], bool]]] = {}
    for row in (await tenant.query(ch, scope.statement(GAPS, query))).named_results():
        ranges = [(int(a), int(b)) for a, b in row["ranges"]]
        found.setdefault(row["gateway_id"], {})[row["block"]] = (ranges, bool(row["more"]))
    return found

