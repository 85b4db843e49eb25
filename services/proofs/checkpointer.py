"""One round of `trilha checkpoint`: the records stored since the last checkpoint become leaves,
and a new signed checkpoint covers them.

Which records, exactly once each, whatever ingest retried, re-read or re-balanced:
- a round reads `calls` rows with `ingested_at` in [last horizon − overlap, now − lag) (ClickHouse's
  clock), in the order (ingested_at, company_id, timestamp, query_id), skipping every record
  (company_id, query_id, timestamp) that already is a committed leaf, and every further copy of
  one record in the same round. The lag lets inserts in flight land; the overlap picks up a row
  whose insert was slow to become visible after its `ingested_at` was stamped. A record is never
  visible twice (ingest's de-duplication tokens, ReplacingMergeTree), and a copy that does reach
  `calls` twice (a batch retried after the de-duplication window) is the same record: it keeps
  its one leaf.
- the round writes its leaves and the perfect subtrees they complete under a fresh `attempt`, then
  the checkpoint naming that attempt. A round cut short anywhere leaves rows no reader takes (see
  `ledger`) and the previous checkpoint as the latest: every stored checkpoint stays verifiable,
  and the next round starts again from it.
"""

from __future__ import annotations

import time
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from query.calls.keyset import instant
from query.calls.keyset import instant_millis as millis
from query.calls.records import to_record
from services.proofs import ledger, merkle, signing
from services.proofs.leaf import leaf_hash
from services.runtime.settings import Settings

PAGE = 20_000



async def run_round(ch: AsyncClient, settings: Settings, key_id: str, key: Ed25519PrivateKey) -> dict[str, Any] | None:
    """Add what was stored since the last checkpoint; the new checkpoint as stored, or None if nothing new."""
    last = await ledger.latest_checkpoint(ch)
    size = int(last["size"]) if last else 0
    horizon = millis(last["horizon"]) if last else 0
    hi = await ledger.server_now_ms(ch) - int(settings.checkpoint_lag_s * 1000)
    lo = max(0, horizon - int(settings.checkpoint_overlap_s * 1000))
    if hi <= horizon:
        return None
    edge = await ledger.nodes(ch, set(merkle.pieces(0, size)), last) if last else {}
    frontier = merkle.Frontier(size, lambda level, index: edge[(level, index)])
    attempt = await ledger.next_attempt(ch, time.time_ns())
    seen: set[tuple[str, str, int]] = set()
    after = None
    while True:
        rows = await ledger.new_records(ch, lo, hi, after, PAGE)
        await _append(ch, rows, frontier, seen, attempt)
        if len(rows) < PAGE:
            break
        last_row = rows[-1]
        after = (last_row["stored_ms"], last_row["stored_company"], last_row["timestamp_ms"], last_row["query_id"])
    if frontier.size == size:
        return None
    body = {"seq": (int(last["seq"]) + 1) if last else 1, "size": frontier.size, "root": frontier.root().hex(),
            "issued_at": instant(int(time.time() * 1000)), "horizon": instant(hi),
            "prev": signing.checkpoint_hash(last) if last else signing.GENESIS, "key_id": key_id}
    stored = {**signing.sign(body, key), "attempt": attempt}
    await ledger.insert(ch, "proof_checkpoints", [stored])
    return stored


async def _append(ch: AsyncClient, rows: list[dict[str, Any]], frontier: merkle.Frontier,
                  seen: set[tuple[str, str, int]], attempt: int) -> None:
    """Give each new record the next leaf index; store its leaf and the subtrees it completes
    (column by column: one JSON document per table and page, not one object per row)."""
    leaves: dict[str, list[Any]] = {name: [] for name in ("leaf_index", "company_id", "query_id", "timestamp",
                                                          "stored_at", "leaf_hash")}
    nodes: dict[str, list[Any]] = {"level": [], "idx": [], "hash": []}
    add_leaf = tuple(column.append for column in leaves.values())
    add_node = tuple(column.append for column in nodes.values())
    for row in rows:
        key = (row["stored_company"], row["query_id"], row["timestamp_ms"])
        if key in seen:
            continue
        seen.add(key)
        stored_at, record = instant(row["stored_ms"]), to_record(row)
        digest = leaf_hash(record, stored_at)
        values = (frontier.size, key[0], key[1], ledger.stored_time(key[2]), stored_at, digest.hex())
        for add, value in zip(add_leaf, values, strict=True):
            add(value)
        for level, index, h in frontier.append(digest):
            add_node[0](level)
            add_node[1](index)
            add_node[2](h.hex())
    await ledger.insert_columns(ch, "proof_leaves", {**leaves, "attempt": [attempt] * len(leaves["leaf_index"])})
    await ledger.insert_columns(ch, "proof_nodes", {**nodes, "attempt": [attempt] * len(nodes["level"])})
