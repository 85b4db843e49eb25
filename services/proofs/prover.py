"""Proofs the query service hands out: inclusion proofs of records, consistency proofs between
checkpoints. Everything in them is what a verifier needs offline (see README, "Proofs").
"""

from __future__ import annotations

import asyncio
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from services.proofs import ledger, merkle
from services.proofs.leaf import instant, millis

UNAVAILABLE = "the proof tree's stored nodes are incomplete (tampering?): the operator should run trilha audit"
PENDING = "not yet covered by a checkpoint: ask again after the next one (TRILHA_CHECKPOINT_INTERVAL_S)"


def _key(record: dict[str, Any]) -> tuple[str, str, int]:
    return record["company_id"], record["query_id"], millis(record["timestamp"])


async def inclusion(ch: AsyncClient, records: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"Checkpoint": …, "Proofs": [one per record, same order]}` against the latest checkpoint."""
    head, rows = await asyncio.gather(ledger.latest_checkpoint(ch), ledger.leaf_rows(ch, [_key(r) for r in records]))
    if head is None:
        return {"Checkpoint": None, "Proofs": [_pending(record) for record in records]}
    size = int(head["size"])
    found = ledger.leaves_in(rows, head)
    ranges = {key: merkle.inclusion_ranges(row["leaf_index"], size) for key, row in found.items()}
    wanted = merkle.needed(r for rs in ranges.values() for r in rs) | {(0, row["leaf_index"]) for row in found.values()}
    stored = await ledger.nodes(ch, wanted, head)
    proofs = []
    for record in records:
        row = found.get(_key(record))
        if row is None:
            proofs.append(_pending(record))
            continue
        try:
            if stored[(0, row["leaf_index"])].hex() != row["leaf_hash"]:
                raise KeyError(row["leaf_index"])  # the leaf row and the tree disagree
            path = [merkle.subtree(a, b, lambda level, index: stored[(level, index)]).hex()
                    for a, b in ranges[_key(record)]]
        except KeyError:  # a stored node is missing or does not match: say so, never a 500
            proofs.append({"query_id": record["query_id"], "status": "unavailable", "message": UNAVAILABLE})
            continue
        proofs.append({"query_id": record["query_id"], "status": "included", "leaf_index": row["leaf_index"],
                       "tree_size": size, "stored_at": instant(row["stored_ms"]), "leaf_hash": row["leaf_hash"],
                       "path": path})
    return {"Checkpoint": ledger.public(head), "Proofs": proofs}


def _pending(record: dict[str, Any]) -> dict[str, Any]:
    return {"query_id": record["query_id"], "status": "pending", "message": PENDING}


async def consistency(ch: AsyncClient, first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """PROOF(first.size, D[second.size]) as hex hashes."""
    m, n = int(first["size"]), int(second["size"])
    if m == 0 or m >= n:
        return []
    ranges = merkle.consistency_ranges(m, n)
    stored = await ledger.nodes(ch, merkle.needed(ranges), second)
    return [merkle.subtree(a, b, lambda level, index: stored[(level, index)]).hex() for a, b in ranges]

