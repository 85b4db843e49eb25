"""The proof tables in ClickHouse (schemas/clickhouse/0050–0053): reading and writing leaves,
perfect-subtree nodes, checkpoints and erasures. Values reach SQL only as bound parameters.

Every row carries its round's `attempt` (ids only grow). A round cut short (killed checkpointer,
ClickHouse outage) leaves rows that no checkpoint names, and the next round writes the same indexes
again under a later attempt: within a checkpoint's tree, the row of the highest attempt up to that
checkpoint's is the one it signed (`_latest`); the checkpointer and audit, which read across
rounds, take only the attempts stored checkpoints name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.calls.keyset import TS
from query.calls.records import columns
from query.calls.served import row_from_json

CHECKPOINT_COLUMNS = ("seq", "size", "root", "issued_at", "horizon", "prev", "key_id", "signature", "attempt")
_INSERT = {"date_time_input_format": "best_effort"}
_COMMITTED = "attempt IN (SELECT attempt FROM proof_checkpoints)"


async def select(ch: AsyncClient, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    raw = await ch.raw_query(sql, parameters=parameters or {}, fmt="JSONEachRow",
                             settings={"output_format_json_quote_64bit_integers": 0})
    return [orjson.loads(line) for line in raw.splitlines() if line]


def stored_time(timestamp_ms: int) -> orjson.Fragment:
    """A DateTime64(3) value as ClickHouse reads it back exactly from JSON: a decimal number of Unix
    seconds (a JSON number: as a string, best-effort parsing takes a leading minus for an offset).
    An ISO string cannot carry every instant `calls` holds (the contract lets in year 0)."""
    sign = "-" if timestamp_ms < 0 else ""
    return orjson.Fragment(f"{sign}{abs(timestamp_ms) // 1000}.{abs(timestamp_ms) % 1000:03d}".encode())


async def insert(ch: AsyncClient, table: str, rows: Iterable[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(row) for row in rows)
    if body:
        await ch.raw_insert(table, None, body, fmt="JSONEachRow", settings=_INSERT)


async def insert_columns(ch: AsyncClient, table: str, columns: dict[str, list[Any]]) -> None:
    """Rows given column by column (equal lengths), as one JSONColumns document: one orjson call
    for a whole page instead of one per row."""
    if columns and next(iter(columns.values())):
        await ch.raw_insert(table, None, orjson.dumps(columns), fmt="JSONColumns", settings=_INSERT)


async def server_now_ms(ch: AsyncClient) -> int:
    """ClickHouse's clock, the one `calls.ingested_at` is stamped with."""
    return int((await ch.query("SELECT toUnixTimestamp64Milli(now64(3))")).result_rows[0][0])


async def checkpoints(ch: AsyncClient, after: int = 0, limit: int = 1_000_000) -> list[dict[str, Any]]:
    """Checkpoints with seq > after, oldest first (every stored row: a rewritten one shows twice)."""
    return await select(ch, f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM proof_checkpoints "
                           "WHERE seq > {after:UInt64} ORDER BY seq, attempt LIMIT {limit:UInt64}",
                       {"after": after, "limit": limit})


async def latest_checkpoint(ch: AsyncClient) -> dict[str, Any] | None:
    rows = await select(ch, f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM proof_checkpoints "
                           "ORDER BY seq DESC, attempt DESC LIMIT 1")
    return rows[0] if rows else None


async def checkpoint(ch: AsyncClient, seq: int) -> dict[str, Any] | None:
    rows = await select(ch, f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM proof_checkpoints "
                           "WHERE seq = {seq:UInt64} ORDER BY attempt LIMIT 1", {"seq": seq})
    return rows[0] if rows else None


def public(checkpoint_row: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint as verifiers get it (without the internal attempt id)."""
    return {name: checkpoint_row[name] for name in CHECKPOINT_COLUMNS if name != "attempt"}


async def nodes(ch: AsyncClient, wanted: set[tuple[int, int]], head: dict[str, Any]) -> dict[tuple[int, int], bytes]:
    """Perfect-subtree hashes by (level, index), all within checkpoint `head`'s tree: of the rows
    stored for a node, the one written by the latest attempt up to `head`'s (`_latest`)."""
    if not wanted:
        return {}
    levels, indexes = zip(*sorted(wanted), strict=True)
    rows = await select(ch, "SELECT level, idx, hash, attempt FROM proof_nodes WHERE (level, idx) IN "
                            "(SELECT arrayJoin(arrayZip({levels:Array(UInt8)}, {indexes:Array(UInt64)}))) "
                            "AND attempt <= {attempt:UInt64}",
                        {"levels": list(levels), "indexes": list(indexes), "attempt": int(head["attempt"])})
    return {key: bytes.fromhex(row["hash"]) for key, row in _latest(rows, lambda r: (r["level"], r["idx"])).items()}


def _latest(rows: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    """Per key, the row of the highest attempt. Within a checkpoint's tree that is the committed one:
    a round cut short wrote rows that the next successful round (a later attempt: attempts only
    grow, see `next_attempt`) wrote again, and rows beyond the tree are filtered out by the caller."""
    found: dict[Any, dict[str, Any]] = {}
    for row in rows:
        k = key(row)
        if k not in found or int(row["attempt"]) > int(found[k]["attempt"]):
            found[k] = row
    return found


async def next_attempt(ch: AsyncClient, now_ns: int) -> int:
    """A round's attempt id: its start time, and above every attempt already stored (a clock set back
    must not make a new round's rows lose to an older, cut-short round's)."""
    stored = (await ch.query("SELECT max(attempt) FROM proof_nodes")).result_rows[0][0]
    return max(now_ns, int(stored or 0) + 1)


async def leaf_rows(ch: AsyncClient, keys: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Every stored leaf row of records (company, query_id, timestamp in ms), of every attempt: read
    beside the latest checkpoint (one round trip), then narrowed to its tree by `leaves_in`."""
    if not keys:
        return []
    companies, query_ids, _ = (list(column) for column in zip(*keys, strict=True))
    return await select(ch, "SELECT company_id, query_id, toUnixTimestamp64Milli(timestamp) AS ts, leaf_index, "
                            "toUnixTimestamp64Milli(stored_at) AS stored_ms, leaf_hash, attempt FROM proof_leaves "
                            "WHERE query_id IN {ids:Array(String)} AND company_id IN {companies:Array(String)}",
                        {"companies": companies, "ids": query_ids})


def leaves_in(rows: list[dict[str, Any]], head: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The leaf of each record in checkpoint `head`'s tree (index, stored_at, hash); the caller
    checks each against the tree's stored leaf hash (node (0, index))."""
    inside = [row for row in rows if int(row["attempt"]) <= int(head["attempt"])
              and int(row["leaf_index"]) < int(head["size"])]
    return _latest(inside, lambda r: (r["company_id"], r["query_id"], r["ts"]))


def new_records_sql(after: bool) -> str:
    """Rows stored in [lo, hi) that are no committed leaf yet, in the order leaves are given."""
    window = f"ingested_at >= {TS % 'lo'} AND ingested_at < {TS % 'hi'}"
    keyset = (f" AND (ingested_at, company_id, timestamp, query_id) > ({TS % 'a_stored'}, {{a_company:String}}, "
              f"{TS % 'a_ts'}, {{a_id:String}})") if after else ""
    return (f"SELECT {columns()}, company_id AS stored_company, toUnixTimestamp64Milli(ingested_at) AS stored_ms "
            "FROM calls "
            f"WHERE {window}{keyset} AND (company_id, query_id, timestamp) NOT IN "
            f"(SELECT company_id, query_id, timestamp FROM proof_leaves WHERE {_COMMITTED} "
            f"AND query_id IN (SELECT query_id FROM calls WHERE {window})) "
            "ORDER BY ingested_at, company_id, timestamp, query_id LIMIT {limit:UInt64}")


async def new_records(ch: AsyncClient, lo: int, hi: int, after: tuple[int, str, int, str] | None,
                      limit: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"lo": lo, "hi": hi, "limit": limit}
    if after is not None:
        params.update(a_stored=after[0], a_company=after[1], a_ts=after[2], a_id=after[3])
    return await _records(ch, new_records_sql(after is not None), params)


async def _records(ch: AsyncClient, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    raw = await ch.raw_query(sql, parameters=params, fmt="JSONEachRow",
                             settings={"output_format_json_quote_64bit_integers": 0})
    return [row_from_json(line) for line in raw.splitlines() if line]


async def stored_rows(ch: AsyncClient, company: str | None) -> list[dict[str, Any]]:
    """Every stored copy of every record (of one company), with when it was stored."""
    where = "WHERE company_id = {company:String}" if company else ""
    return await _records(ch, f"SELECT {columns()}, company_id AS stored_company, "
                              f"toUnixTimestamp64Milli(ingested_at) AS stored_ms FROM calls {where}",
                          {"company": company or ""})


async def all_leaves(ch: AsyncClient) -> list[dict[str, Any]]:
    return await select(ch, "SELECT leaf_index, company_id, query_id, toUnixTimestamp64Milli(timestamp) AS ts, "
                           "toUnixTimestamp64Milli(stored_at) AS stored_ms, leaf_hash, attempt FROM proof_leaves")


async def all_nodes(ch: AsyncClient, committed: set[int]) -> list[dict[str, Any]]:
    rows = await select(ch, "SELECT level, idx, hash, attempt FROM proof_nodes")
    return [row for row in rows if int(row["attempt"]) in committed]


async def leaves_of(ch: AsyncClient, company: str, query_id: str) -> list[dict[str, Any]]:
    """A record's committed leaves (one per timestamp the QueryId was stored with)."""
    return await select(ch, "SELECT leaf_index, toUnixTimestamp64Milli(timestamp) AS ts, leaf_hash FROM proof_leaves "
                          "WHERE company_id = {company:String} AND query_id = {query_id:String} "
                          f"AND {_COMMITTED}", {"company": company, "query_id": query_id})
