"""Which output formats can be streamed, and how.

chDB's streaming query hands out each block as a *self-contained* rendering in the requested
format: a JSON or Arrow chunk is a whole document, a CSVWithNames chunk repeats the header. Chunks
can simply be concatenated only for formats without a prefix or suffix (Native, RowBinary, TSV,
CSV, JSONEachRow ...); for the *WithNames[AndTypes] variants the header is cut from every chunk
after the first. Everything else (JSON, Arrow, Parquet, Pretty ...) is produced in one piece.
"""

from __future__ import annotations

from collections.abc import Mapping

_PLAIN = frozenset({
    "Native", "RowBinary", "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "Raw", "CSV", "JSONEachRow",
    "JSONLines", "NDJSON", "JSONStringsEachRow", "JSONCompactEachRow", "JSONCompactStringsEachRow", "TSKV",
    "LineAsString", "RawBLOB", "Null",
})
# Formats whose every chunk starts with this many text header lines (not the Raw ones: their
# names are not escaped, so a line break cannot be told from the end of the header).
_HEADED = ("TabSeparated", "TSV", "CSV", "JSONCompactEachRow", "JSONCompactStringsEachRow")
_TEXT_HEADER_LINES = {**{f"{base}WithNames": 1 for base in _HEADED},
                      **{f"{base}WithNamesAndTypes": 2 for base in _HEADED}}
_BINARY_HEADER = {"RowBinaryWithNames": False, "RowBinaryWithNamesAndTypes": True}  # value: has types

_CONTENT_TYPES = {
    "Native": "application/octet-stream", "RowBinary": "application/octet-stream",
    "Arrow": "application/octet-stream", "ArrowStream": "application/octet-stream",
    "Parquet": "application/octet-stream", "ORC": "application/octet-stream",
    "JSON": "application/json; charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8", "CSV": "text/csv; charset=UTF-8",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "XML": "application/xml; charset=UTF-8",
}


def content_type(fmt: str) -> str:
    if fmt in _CONTENT_TYPES:
        return _CONTENT_TYPES[fmt]
    if fmt.startswith("RowBinary"):
        return "application/octet-stream"
    if fmt.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    return "text/plain; charset=UTF-8"


def streamable(fmt: str, settings: Mapping[str, str]) -> bool:
    """Whether a result in `fmt` can go out chunk by chunk as chDB produces it."""
    array_of_rows = settings.get("output_format_json_array_of_rows", "0") not in ("0", "false", "False", "")
    if array_of_rows and fmt in ("JSONEachRow", "JSONLines", "NDJSON"):
        return False  # wrapped in [ ... ]: a prefix and a suffix
    return fmt in _PLAIN or fmt in _TEXT_HEADER_LINES or fmt in _BINARY_HEADER


def strip_header(fmt: str, chunk: bytes) -> bytes:
    """`chunk` without the header chDB repeats in every chunk of a *WithNames format."""
    if fmt in _TEXT_HEADER_LINES:
        pos = 0
        for _ in range(_TEXT_HEADER_LINES[fmt]):
            pos = _csv_line_end(chunk, pos) if fmt.startswith("CSV") else chunk.find(b"\n", pos) + 1
            if pos <= 0:
                return b""
        return chunk[pos:]
    if fmt in _BINARY_HEADER:
        return chunk[_row_binary_header_end(chunk, _BINARY_HEADER[fmt]):]
    return chunk


def _csv_line_end(data: bytes, pos: int) -> int:
    """Index after the line starting at `pos`; a CSV name in quotes may itself hold a line break."""
    quoted = False
    for i in range(pos, len(data)):
        byte = data[i]
        if byte == 0x22:  # "
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            return i + 1
    return 0


def needs_header(fmt: str) -> bool:
    """Whether an empty result in `fmt` still has a header (column names) to send."""
    return fmt == "Native" or fmt in _TEXT_HEADER_LINES or fmt in _BINARY_HEADER


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _row_binary_header_end(data: bytes, with_types: bool) -> int:
    """RowBinaryWithNames[AndTypes]: a column count, then that many (twice with types) strings."""
    count, pos = _varint(data, 0)
    for _ in range(count * (2 if with_types else 1)):
        size, pos = _varint(data, pos)
        pos += size
    return pos


def native_header(columns: list[tuple[str, str]]) -> bytes:
    """An empty Native block naming the columns: what ClickHouse sends for an empty result, and
    what clickhouse-connect reads column names and types from (chDB sends nothing at all)."""
    out = bytearray(_leb128(len(columns)) + _leb128(0))
    for name, type_name in columns:
        for text in (name, type_name):
            raw = text.encode()
            out += _leb128(len(raw)) + raw
    return bytes(out)


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
