"""What a Native insert would cost the worker: decoded records → one ClickHouse Native block, in Python.

ClickHouse inserts the `calls` schema from Native for ~4 µs a record less CPU than from the JSON
lines ingest sends (`insert_costs.floor`), so a worker that built Native could only gain if building
it cost less than that. This builds the block the cheapest way plain Python offers: from the
records the decoder already made (msgspec structs, so no second parse), one column at a time with
C-level loops (`map`, `attrgetter`, `array`, `bytes.join`), timestamps turned into milliseconds,
absent values given the defaults JSONEachRow would have given them.

`python -m tests.bench.native_build [--records N]`: on its own embedded stack, inserts the same
records once as JSON lines (what ingest sends) and once as the Native block, checks ClickHouse holds
the same rows from both, and prints the build's cost per record; `make bench-ingest` prints
`build_cost` beside the floor of its design.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec

from ingest.writer import contract_columns, insert_settings
from schemas.contract import call_record_decoder
from services.runtime import clients
from tests.bench.harness import in_own_stack
from tests.ingest.support import record_values
from tests.stack import Stack

_TEXT = ("query_id", "company_id", "client_id", "client_name", "client_username", "authorization_id",
         "authorization_name", "user_id", "server", "method", "url", "resource", "event", "error_message", "q")
_PAYLOADS = ("request", "result")
_DATE_TIME = msgspec.json.Decoder(datetime).decode
_EPOCH, _MS = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = [_varint(n) for n in range(1 << 14)]  # a length's prefix looked up, not computed


def _strings(values: list[bytes]) -> bytes:
    return b"".join([(_VARINTS[len(v)] if len(v) < 16384 else _varint(len(v))) + v for v in values])


def _texts(values: list[str | None]) -> bytes:
    return _strings([v.encode() if v is not None else b"" for v in values])


def _column(name: str, kind: str, data: bytes) -> bytes:
    return _strings([name.encode(), kind.encode()]) + data


def native_block(records: list[Any]) -> tuple[list[str], bytes]:
    """The columns and the Native block (uncompressed, as an HTTP insert sends it) of `records`."""
    def field(name: str) -> list[Any]:
        return list(map(attrgetter(name), records))

    columns = [_column(name, "String", _texts(field(name))) for name in _TEXT]
    columns += [_column(name, "String", _strings(list(map(bytes, field(name))))) for name in _PAYLOADS]
    stamps = array("q", [(_DATE_TIME(raw) - _EPOCH) // _MS for raw in field("timestamp")])
    columns.append(_column("timestamp", "DateTime64(3, 'UTC')", stamps.tobytes()))
    columns.append(_column("duration_ms", "Float64", array("d", field("duration_ms")).tobytes()))
    status = [s or 0 for s in field("status")]
    columns.append(_column("status", "UInt16", array("H", status).tobytes()))
    errors = [s >= 400 if e is None else e for s, e in zip(status, field("error"), strict=True)]
    columns.append(_column("error", "Bool", bytes(errors)))
    columns.append(_column("ip", "String", _texts([ip or "::" for ip in field("ip")])))
    columns.append(_column("tags", "Map(String, String)", _map(field("tags"))))
    gateways, seqs = field("gateway_id"), field("gateway_seq")
    columns.append(_column("gateway_id", "Nullable(String)", bytes(g is None for g in gateways) + _texts(gateways)))
    columns.append(_column("gateway_seq", "Nullable(UInt64)",
                           bytes(s is None for s in seqs) + array("Q", [s or 0 for s in seqs]).tobytes()))
    names = [*_TEXT, *_PAYLOADS, "timestamp", "duration_ms", "status", "error", "ip", "tags", "gateway_id",
             "gateway_seq"]
    return names, _varint(len(columns)) + _varint(len(records)) + b"".join(columns)


def _map(maps: list[dict[str, str] | None]) -> bytes:
    offsets, total, keys, values = array("Q"), 0, [], []
    for entries in maps:
        if entries:
            total += len(entries)
            keys.extend(entries)
            values.extend(entries.values())
        offsets.append(total)
    return offsets.tobytes() + _texts(keys) + _texts(values)


def build_cost(values: list[bytes], rounds: int = 5) -> float:
    """µs per record of building the Native block from decoded records, best of `rounds`."""
    parse = call_record_decoder()[0]
    records, best = [parse(value) for value in values], float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        native_block(records)
        best = min(best, time.perf_counter() - started)
    return best / len(records) * 1e6


async def run(stack: Stack, args: argparse.Namespace) -> int:
    values = record_values(args.records, "native-build")
    ch = await clients.clickhouse(stack.settings)
    try:
        settings = insert_settings(len(values))
        await ch.raw_insert("calls", contract_columns(), b"\n".join(values), fmt="JSONEachRow",
                            settings={**settings, "insert_deduplication_token": "json"})
        names, block = native_block([call_record_decoder()[0](value) for value in values])
        await ch.raw_insert("calls", names, block, fmt="Native", settings={"insert_deduplication_token": "native"})
        rows, distinct = (await ch.query("SELECT count(), uniqExact(tuple(* EXCEPT ingested_at)) FROM calls")
                          ).result_rows[0]
    finally:
        await ch.close()
    same = rows == 2 * len(values) and distinct == len(values)
    print(f"{rows:,} rows from both inserts, {distinct:,} distinct: "
          + ("the Native block holds exactly the JSON lines' rows" if same else "THE TWO INSERTS DIFFER"))
    print(f"building it in Python: {build_cost(values):.2f} µs/record")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args(argv)
    return in_own_stack("native-build", lambda stack: run(stack, args))


if __name__ == "__main__":
    sys.exit(main())
