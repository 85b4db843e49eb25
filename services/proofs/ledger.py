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

from query.calls.records import columns
from query.calls.served import row_from_json

CHECKPOINT_COLUMNS = ("seq", "size", "root", "issued_at", "horizon", "prev", "key_id", "signature", "attempt")
_MS = "fromUnixTimestamp64Milli({%s:Int64}, 'UTC')"
_INSERT = {"date_time_input_format": "best_effort"}
_COMMITTED = "attempt IN (SELECT attempt FROM proof_checkpoints)"


async def select(ch: AsyncClient, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    raw = await ch.raw_query(sql, parameters=parameters or {}, fmt="JSONEachRow",
                             settings={"output_format_json_quote_64bit_integers": 0})
    return [orjson.loads(line) for line in raw.splitlines() if line]


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


# The latest checkpoint, as max((seq, attempt, size)): the row `latest_checkpoint` takes.
_HEAD = "(SELECT max((seq, attempt, size)) FROM proof_checkpoints)"


def path_nodes_sql(indexes: str, size: str) -> str:
    """SQL for the (level, idx) of the stored perfect subtrees the inclusion paths of leaves
    `indexes` (an Array(UInt64) expression) in a tree of `size` leaves fold from, plus the leaves
    themselves: exactly `merkle.needed(merkle.inclusion_ranges(m, size)) | {(0, m)}` per m < size
    (tests/proofs/test_proof_reads.py checks it). Per level l with 2**l <= size: the sibling
    s = (m >> l) xor 1 when its subtree is complete ((s + 1) << l <= size), and the tree's right
    edge (l, (size >> l) − 1) when bit l of size is set and leaf m and the last leaf lie in different
    subtrees of level l + 1 (the edge pieces then fold m's one incomplete sibling)."""
    levels = f"arrayFilter(l -> bitShiftLeft(toUInt64(1), l) <= {size}, range(64))"
    sibling = "bitXor(bitShiftRight(m, l), 1)"
    siblings = (f"arrayMap(l -> (toUInt8(l), toUInt64({sibling})), "
                f"arrayFilter(l -> bitShiftLeft({sibling} + 1, l) <= {size}, {levels}))")
    edge = (f"arrayMap(l -> (toUInt8(l), toUInt64(bitShiftRight({size}, l) - 1)), arrayFilter(l -> bitTest({size}, l) "
            f"AND bitShiftRight(m, l + 1) != bitShiftRight(toUInt64({size} - 1), l + 1), {levels}))")
    return (f"arrayDistinct(arrayFlatten(arrayMap(m -> arrayConcat([(toUInt8(0), toUInt64(m))], {siblings}, {edge}), "
            f"arrayFilter(m -> m < {size}, {indexes}))))")


_LEAF_COLUMNS = ("company_id", "query_id", "toUnixTimestamp64Milli(timestamp) AS ts", "leaf_index",
                 "toUnixTimestamp64Milli(stored_at) AS stored_ms", "leaf_hash", "attempt")
_PROOF_READS = (  # the leaves are read once, as a scalar: their indexes choose the nodes
    "WITH " + _HEAD + " AS head, (SELECT groupArray((" + ", ".join(_LEAF_COLUMNS) + ")) FROM proof_leaves "
    "WHERE query_id IN {ids:Array(String)} AND company_id IN {companies:Array(String)}) AS leaves "
    "SELECT 'checkpoint', formatRowNoNewline('JSONEachRow', " + ", ".join(CHECKPOINT_COLUMNS) + ") "
    "FROM proof_checkpoints WHERE seq = head.1 AND attempt = head.2 "
    "UNION ALL SELECT 'leaf', formatRowNoNewline('JSONEachRow', "
    + ", ".join(f"leaf.{n} AS {c.rsplit(' ', 1)[-1]}" for n, c in enumerate(_LEAF_COLUMNS, 1))
    + ") FROM (SELECT arrayJoin(leaves) AS leaf) "
    "UNION ALL SELECT 'node', formatRowNoNewline('JSONEachRow', level, idx, hash, attempt) FROM proof_nodes "
    f"WHERE (level, idx) IN (SELECT arrayJoin({path_nodes_sql('arrayMap(leaf -> leaf.4, leaves)', 'head.3')})) "
    "AND attempt <= head.2")


async def proof_reads(ch: AsyncClient, keys: list[tuple[str, str, int]]) -> tuple[
        dict[str, Any] | None, list[dict[str, Any]], dict[tuple[int, int], bytes]]:
    """In one round trip, read by each table's sorting key, what inclusion proofs of records
    (company, query_id, timestamp in ms) need: the latest checkpoint, every stored leaf row of the
    records (of every attempt; `leaves_in` narrows them to its tree), and the stored perfect
    subtrees their paths fold from in that tree (`nodes`' rule: per node, the latest attempt up
    to the checkpoint's)."""
    companies, query_ids = sorted({k[0] for k in keys}), sorted({k[1] for k in keys})
    raw = await ch.raw_query(_PROOF_READS, parameters={"companies": companies, "ids": query_ids}, fmt="TSVRaw",
                             settings={"output_format_json_quote_64bit_integers": 0})
    found: dict[str, list[dict[str, Any]]] = {"checkpoint": [], "leaf": [], "node": []}
    for line in raw.splitlines():
        kind, _, row = line.partition(b"\t")
        found[kind.decode()].append(orjson.loads(row))
    head = found["checkpoint"][0] if found["checkpoint"] else None
    nodes = _latest(found["node"], lambda r: (r["level"], r["idx"]))
    return head, found["leaf"], {key: bytes.fromhex(row["hash"]) for key, row in nodes.items()}


def leaves_in(rows: list[dict[str, Any]], head: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The leaf of each record in checkpoint `head`'s tree (index, stored_at, hash); the caller
    checks each against the tree's stored leaf hash (node (0, index))."""
    inside = [row for row in rows if int(row["attempt"]) <= int(head["attempt"])
              and int(row["leaf_index"]) < int(head["size"])]
    return _latest(inside, lambda r: (r["company_id"], r["query_id"], r["ts"]))


def new_records_sql(after: bool) -> str:
    """Rows stored in [lo, hi) that are no committed leaf yet, in the order leaves are given."""
    window = f"ingested_at >= {_MS % 'lo'} AND ingested_at < {_MS % 'hi'}"
    keyset = (f" AND (ingested_at, company_id, timestamp, query_id) > ({_MS % 'a_stored'}, {{a_company:String}}, "
              f"{_MS % 'a_ts'}, {{a_id:String}})") if after else ""
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
