"""LGPD erasure that shows as an erasure, not as tampering.

`trilha erase --company C --query-id Q --reason TEXT` deletes the record's rows (`calls`,
`call_ids`, `call_terms`) and first stores a signed entry in `proof_erasures`: the record's key,
its leaf index and leaf hash (which stay in the tree: a hash reveals nothing of the fields),
when and why, signed with the checkpoint key over RFC 8785 JSON of those fields plus
`"v": "trilha-erasure/1"`. `trilha audit` then lists the record as erased, not removed, and
every checkpoint and every other record's proof keeps verifying.
"""

from __future__ import annotations

import time
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from query.calls.keyset import instant
from schemas import cluster
from schemas.migrations import for_layout
from services.proofs import ledger, signing
from services.runtime import clients
from services.runtime.settings import ConfigError, Settings

FIELDS = ("company_id", "query_id", "timestamp", "leaf_index", "leaf_hash", "erased_at", "reason", "key_id")
_TABLES = ("calls", "call_ids", "call_terms")


def entry_ok(entry: dict[str, Any], leaf: dict[str, Any], public_keys: dict[str, bytes]) -> bool:
    """The entry is signed and names this very leaf."""
    return (signing.signature_ok(entry, public_keys, signing.ERASURE_VERSION, FIELDS)
            and entry["leaf_index"] == leaf["leaf_index"] and entry["leaf_hash"] == leaf["leaf_hash"])


async def entries(ch: AsyncClient, company: str | None) -> dict[tuple[str, str, int], dict[str, Any]]:
    where = "WHERE company_id = {company:String}" if company else ""
    columns = ", ".join(name for name in FIELDS if name != "timestamp")
    rows = await ledger.select(ch, f"SELECT {columns}, signature, toUnixTimestamp64Milli(timestamp) AS ts "
                                   f"FROM proof_erasures {where}", {"company": company or ""})
    return {(row["company_id"], row["query_id"], row["ts"]): {**row, "timestamp": instant(row["ts"])} for row in rows}


async def erase(settings: Settings, company: str, query_id: str, reason: str, key_id: str,
                key: Ed25519PrivateKey) -> list[dict[str, Any]]:
    """Sign an erasure entry per checkpointed copy of the record, then delete its rows everywhere."""
    ch = await clients.clickhouse(settings)
    try:
        found = await ledger.leaves_of(ch, company, query_id)
        if not found:
            raise ConfigError(f"{company} has no checkpointed record {query_id}: wait for the next checkpoint "
                              "(a record not yet in the tree can be deleted without an erasure entry)")
        made = []
        for leaf in found:
            body = {"company_id": company, "query_id": query_id, "timestamp": instant(leaf["ts"]),
                    "leaf_index": leaf["leaf_index"], "leaf_hash": leaf["leaf_hash"],
                    "erased_at": instant(int(time.time() * 1000)), "reason": reason, "key_id": key_id}
            made.append(signing.sign(body, key, signing.ERASURE_VERSION, FIELDS))
        await ledger.insert(ch, "proof_erasures", [{**entry, "timestamp": ledger.stored_time(leaf["ts"])}
                                                   for entry, leaf in zip(made, found, strict=True)])
    finally:
        await ch.close()
    await delete_rows(settings, company, query_id)
    return made


async def delete_rows(settings: Settings, company: str, query_id: str) -> None:
    """The record's rows, on every shard."""
    for table in _TABLES:
        await mutate(settings, f"ALTER TABLE {table} DELETE WHERE company_id = {{company:String}} "
                               "AND query_id = {query_id:String}", {"company": company, "query_id": query_id})


async def mutate(settings: Settings, statement: str, parameters: dict[str, Any]) -> None:
    """An `ALTER TABLE t …` mutation on t's local table on every shard (once ON CLUSTER on a real
    cluster), waited for."""
    layout = cluster.layout(settings)
    for target in cluster.ddl_targets(settings):
        ch = await clients.clickhouse(target)
        try:
            for part in for_layout(statement, layout):
                await ch.command(part, parameters=parameters, settings={"mutations_sync": 2})
        finally:
            await ch.close()
