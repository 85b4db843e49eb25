"""Where ClickHouse's insert CPU goes on the `calls` schema, costed against a bare table in one run.

`python -m tests.bench.insert_costs [--records N] [--rounds R]`: on its own embedded
stack, the same ~1.1 KB records (the ingest benchmark's) are inserted, one insert of
N rows at a time, into fresh tables built from `schemas/clickhouse/0002_calls.sql` with its features
added one by one:

  bare               the columns and their types only: MergeTree, same ORDER BY, no codecs
  + codecs           the columns' CODECs (ZSTD on the texts, Delta on the timestamp)
  + replacing        ReplacingMergeTree, monthly partitions, the de-duplication window
  + folded           the two MATERIALIZED `*_folded` columns (NFD normalisation and a regex)
  + skip indexes     the six bloom-filter/minmax indexes
  + call_ids view    the QueryId → timestamp materialized view and its table
  + call_terms view  the search-terms view (regexes, ARRAY JOIN) and its table: the full schema

each in JSONEachRow with ingest's settings (`ingest.writer.insert_settings`) and in Native (bytes
ClickHouse itself wrote from the bare table, so no Python builds them: the parse-free floor); the
bare table also in RowBinary and ArrowStream. The cost is ClickHouse's own accounting: the
server's `system.events` OSCPUVirtualTimeMicroseconds before and after each insert (nothing else
runs on this stack), per row, the best of R rounds (each into a fresh table).

`--merges [--granule-bytes B]`: instead, the `calls` schema as it is and with adaptive granules of
B bytes (`index_granularity_bytes`; a QueryId lookup then reads one such granule of `calls`
instead of 8,192 rows), interleaved for R rounds: N rows inserted in 10 parts, then every table
merged (`OPTIMIZE … FINAL`), the CPU of each phase per row, as ingest's parts are merged in the
background.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

from clickhouse_connect.driver.asyncclient import AsyncClient

from ingest.writer import contract_columns, insert_settings
from schemas import clickhouse_migrations
from schemas.migrations import statements
from services.runtime import clients
from tests.bench.harness import in_own_stack
from tests.ingest.support import record_values
from tests.stack import Stack

CPU_SQL = "SELECT value FROM system.events WHERE event = 'OSCPUVirtualTimeMicroseconds'"


def _migration(prefix: str) -> list[str]:
    return next(statements(sql) for name, sql in clickhouse_migrations() if name.startswith(prefix))


def _calls_ddl() -> str:
    return _migration("0002")[0]


def _parts() -> tuple[str, list[str], str]:
    """The CREATE statement as (head, one line per column or index without its comma, tail)."""
    ddl = _calls_ddl()
    open_at, close_at = ddl.index("(\n"), ddl.rindex("\n)")
    body = [line.strip().rstrip(",") for line in ddl[open_at + 2:close_at].splitlines() if line.strip()]
    return ddl[:open_at], body, ddl[close_at + 2:]


def _table(body: list[str], codecs: bool, replacing: bool) -> str:
    head, _, tail = _parts()
    if not codecs:
        body = [re.sub(r"\s*CODEC\(.*\)$", "", line) for line in body]
    if not replacing:
        tail = tail.replace("ENGINE = ReplacingMergeTree", "ENGINE = MergeTree")
        tail = re.sub(r"\nPARTITION BY [^\n]*", "", tail)
        tail = re.sub(r"SETTINGS [^\n;]*", "SETTINGS index_granularity = 8192", tail)
    return head + "(\n    " + ",\n    ".join(body) + "\n)" + tail


def _step(codecs: bool = True, replacing: bool = True, folded: bool = True, indexes: bool = True
          ) -> Callable[[], str]:
    def make() -> str:
        body = [line for line in _parts()[1] if (folded or "_folded " not in line)
                and (indexes or not line.startswith("INDEX "))]
        return _table(body, codecs, replacing)
    return make


STEPS: list[tuple[str, Callable[[], str]]] = [
    ("bare", _step(codecs=False, replacing=False, folded=False, indexes=False)),
    ("+ codecs", _step(replacing=False, folded=False, indexes=False)),
    ("+ replacing", _step(folded=False, indexes=False)),
    ("+ folded", _step(indexes=False)),
    ("+ skip indexes", _step()),
]
VIEWS = {"+ call_ids view": "0003", "+ call_terms view": "0004"}
FULL = "+ call_terms view"  # the whole `calls` schema: every feature above


def with_granule_bytes(ddl: list[str], granule_bytes: int) -> list[str]:
    """The variant's statements with `calls` cut into granules of at most `granule_bytes`."""
    return [re.sub(r"(SETTINGS [^;]*)$", rf"\1, index_granularity_bytes = {granule_bytes}", ddl[0]), *ddl[1:]]


def _renamed(sql: str, table: str) -> str:
    return re.sub(r"\b(calls|call_ids|call_terms)(_mv)?\b", lambda m: f"{table}_{m.group(1)}{m.group(2) or ''}",
                  sql)


def _added_columns(table: str) -> list[str]:
    """The columns later migrations add to `calls`, so every contract field has its column."""
    return [_renamed(s, table) for _, sql in clickhouse_migrations() for s in statements(sql)
            if re.match(r"ALTER\s+TABLE\s+calls\s+ADD\s+COLUMN\b", s, re.I)]


def variants(table: str) -> list[tuple[str, list[str]]]:
    """(name, statements creating the variant's tables; the insert target is `<table>_calls`)."""
    out: list[tuple[str, list[str]]] = []
    extra: list[str] = _added_columns(table)
    for name, step in STEPS:
        ddl = step()
        out.append((name, [_renamed(ddl, table), *extra]))
    for name, prefix in VIEWS.items():
        view = _migration(prefix)
        if prefix == "0004":  # the view's query as 0030 left it
            view = [*view[:1], _migration("0030")[3].replace("ALTER TABLE call_terms_mv MODIFY QUERY",
                                                             "CREATE MATERIALIZED VIEW IF NOT EXISTS "
                                                             "call_terms_mv TO call_terms AS")]
        extra = extra + [_renamed(s, table) for s in view]
        out.append((name, [_renamed(ddl, table), *extra]))
    return out


async def _cpu(ch: AsyncClient) -> int:
    return int((await ch.query(CPU_SQL)).result_rows[0][0])


async def cost(ch: AsyncClient, ddl: list[str], body: bytes, fmt: str, rows: int, tag: str) -> float:
    """CPU µs per row of one insert of `body` into freshly made tables."""
    await _drop(ch)
    for statement in ddl:
        await ch.command(statement)
    settings = {**insert_settings(rows), "insert_deduplication_token": f"{tag}-{time.time()}"}
    before = await _cpu(ch)
    await ch.raw_insert("cost_calls", contract_columns(), body, settings=settings, fmt=fmt)
    return (await _cpu(ch) - before) / rows


async def _drop(ch: AsyncClient) -> None:
    for name in ("cost_call_terms_mv", "cost_call_ids_mv", "cost_call_terms", "cost_call_ids", "cost_calls"):
        await ch.command(f"DROP TABLE IF EXISTS {name} SYNC")


async def formats(ch: AsyncClient, json_body: bytes, bare: list[str], rows: int) -> dict[str, bytes]:
    """The same rows in every format, written by ClickHouse from the bare table (no Python per field)."""
    await _drop(ch)
    for statement in bare:
        await ch.command(statement)
    await ch.raw_insert("cost_calls", contract_columns(), json_body, settings=insert_settings(rows),
                        fmt="JSONEachRow")
    select = f"SELECT {', '.join(contract_columns())} FROM cost_calls"
    out = {"JSONEachRow": json_body}
    for fmt in ("Native", "RowBinary", "ArrowStream"):
        out[fmt] = await ch.raw_query(select, fmt=fmt)
    return out


async def floor(ch: AsyncClient, values: list[bytes]) -> dict[str, float]:
    """CPU µs per row of ClickHouse alone inserting `values` once: into a bare table in Native (the
    floor: no parsing, no schema work), and into the full `calls` schema in Native and as ingest
    sends them (JSONEachRow)."""
    steps = dict(variants("cost"))
    bodies = await formats(ch, b"\n".join(values) + b"\n", steps["bare"], len(values))
    figures = {"bare table, Native": await cost(ch, steps["bare"], bodies["Native"], "Native", len(values), "floor")}
    for fmt in ("Native", "JSONEachRow"):
        figures[f"calls schema, {fmt}"] = await cost(ch, steps[FULL], bodies[fmt], fmt, len(values), "floor")
    await _drop(ch)
    return figures


async def run(stack: Stack, args: argparse.Namespace) -> int:
    values = record_values(args.records, "cost-company", seed=7)
    body = b"\n".join(values) + b"\n"
    print(f"{args.records:,} records, {len(body) / args.records:.0f} bytes each as JSON", flush=True)
    ch = await clients.clickhouse(stack.settings, send_receive_timeout=1800)
    try:
        if args.merges:
            await merges(ch, values, args.rounds, args.granule_bytes)
            return 0
        steps = variants("cost")
        bodies = await formats(ch, body, steps[0][1], args.records)
        table: list[tuple[str, str, float]] = []
        for name, ddl in steps:
            for fmt in ("JSONEachRow", "Native") + (("RowBinary", "ArrowStream") if name == "bare" else ()):
                best = min([await cost(ch, ddl, bodies[fmt], fmt, args.records, f"{name}{fmt}{n}")
                            for n in range(args.rounds)])
                table.append((name, fmt, best))
                print(f"  {name:<18} {fmt:<12} {best:6.2f} µs/row", flush=True)
        await _drop(ch)
    finally:
        await ch.close()
    report(table)
    return 0


async def merges(ch: AsyncClient, values: list[bytes], rounds: int, granule_bytes: int, parts: int = 10) -> None:
    """Insert in parts then merge all, for `calls` as it is and with granules of `granule_bytes`."""
    size, full = len(values) // parts, dict(variants("cost"))[FULL]
    schemas = {"calls": full, f"calls, {granule_bytes:,} B granules": with_granule_bytes(full, granule_bytes)}
    for n in range(rounds):
        for name, ddl in schemas.items():
            await _drop(ch)
            for statement in ddl:
                await ch.command(statement)
            started = await _cpu(ch)
            for part in range(parts):
                body = b"\n".join(values[part * size:(part + 1) * size]) + b"\n"
                settings = {**insert_settings(size), "insert_deduplication_token": f"merge-{n}-{name}-{part}"}
                await ch.raw_insert("cost_calls", contract_columns(), body, settings=settings, fmt="JSONEachRow")
            inserted = await _cpu(ch)
            for table in ("cost_calls", "cost_call_ids", "cost_call_terms"):
                await ch.command(f"OPTIMIZE TABLE {table} FINAL")
            merged = await _cpu(ch)
            insert_us, merge_us = (inserted - started) / len(values), (merged - inserted) / len(values)
            print(f"  round {n} {name:<30} insert {insert_us:6.2f}  merge {merge_us:6.2f}  "
                  f"total {insert_us + merge_us:6.2f} µs/row", flush=True)
    await _drop(ch)


def report(table: list[tuple[str, str, float]]) -> None:
    print("\nClickHouse CPU per row (system.events OSCPUVirtualTimeMicroseconds), best of rounds")
    print(f"{'schema':<18}{'JSONEachRow':>13}{'step':>8}{'Native':>10}{'step':>8}")
    previous: dict[str, float] = {}
    for name in dict.fromkeys(row[0] for row in table):
        cells = ""
        for fmt in ("JSONEachRow", "Native"):
            value = next(c for n, f, c in table if n == name and f == fmt)
            step = value - previous.get(fmt, value)
            previous[fmt] = value
            cells += f"{value:>13.2f}{step:>+8.2f}" if fmt == "JSONEachRow" else f"{value:>10.2f}{step:>+8.2f}"
        print(f"{name:<18}{cells}")
    for name, fmt, value in table:
        if name == "bare" and fmt in ("RowBinary", "ArrowStream"):
            print(f"bare in {fmt}: {value:.2f} µs/row")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--merges", action="store_true", help="insert + merge CPU, by granule size")
    parser.add_argument("--granule-bytes", type=int, default=1 << 20, help="the candidate granule size (--merges)")
    args = parser.parse_args(argv)
    return in_own_stack("insert-costs", lambda stack: run(stack, args))


if __name__ == "__main__":
    sys.exit(main())
