"""Just enough ClickHouse SQL lexing to route an HTTP request without a full parser.

The endpoint must know, before running anything, whether a body is an INSERT whose data follows
a `FORMAT name` clause (streamed into chDB in constant memory), which output format a query asks
for (for the `X-ClickHouse-Format` header and for deciding whether a result can be streamed), and
whether a statement could change a connection's state (so a pooled connection is not reused).
Strings, quoted identifiers and comments are skipped so that a `FORMAT` inside a literal never
counts. Everything works on `str` decoded as latin-1 by the caller, so offsets are byte offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z0-9_$\x80-\xff]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_FORMAT_WORD = re.compile(r"(?i)\bformat\b")
_SPACE = " \t\r\n\f\v"
_LINE_COMMENTS = ("--", "# ", "#!")  # ClickHouse's lexer: SQL and MySQL-style line comments

# First keywords of statements that return a result set (ClickHouse reports X-ClickHouse-Format).
_RESULT_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "CHECK",
                              "("})
# First keywords of SELECT queries: the only statements chDB can stream (send_query refuses SHOW,
# DESCRIBE, EXPLAIN ... with "Streaming query is not supported").
_SELECT_KEYWORDS = frozenset({"SELECT", "WITH", "("})
# First keywords of statements that leave no state behind on a connection, so it may be reused.
_STATELESS_KEYWORDS = frozenset({
    "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "CHECK", "(", "INSERT",
    "CREATE", "DROP", "ALTER", "RENAME", "TRUNCATE", "OPTIMIZE", "SYSTEM", "ATTACH", "DETACH",
    "DELETE", "UPDATE", "EXCHANGE", "KILL", "GRANT", "REVOKE",
})


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "ident" (quoted identifier), "punct"
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class InsertHead:
    """An `INSERT ... FORMAT name` statement split from the data that follows it."""

    statement: str  # the INSERT up to (not including) FORMAT, as chDB's send_insert wants it
    fmt: str
    data_offset: int  # where the data starts in the scanned text


def _skip_quoted(text: str, pos: int, quote: str) -> int:
    """Index just past the closing quote; backslash escapes and doubled quotes both apply."""
    i, n = pos + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def tokens(text: str, start: int = 0) -> Iterator[Token]:
    """Tokens of `text`, skipping whitespace and comments; an unterminated string runs to the end."""
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif text.startswith(_LINE_COMMENTS, i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif ch == "'":
            end = _skip_quoted(text, i, "'")
            yield Token("string", i, end, text[i:end])
            i = end
        elif ch in "`\"":
            end = _skip_quoted(text, i, ch)
            yield Token("ident", i, end, text[i:end])
            i = end
        else:
            match = _WORD.match(text, i)
            end = match.end() if match else i + 1
            yield Token("word" if match else "punct", i, end, text[i:end])
            i = end


def first_keyword(text: str) -> str:
    """The statement's first keyword upper-cased ("SELECT", "INSERT", "(" ...), or "" for none."""
    for token in tokens(text):
        return token.text.upper() if token.kind == "word" else token.text
    return ""


def _data_offset(text: str, pos: int) -> int:
    """ClickHouse's rule: data starts after blanks and at most one line break following the format name."""
    n = len(text)
    while pos < n and text[pos] in " \t\f":
        pos += 1
    if pos < n and text[pos] == "\r":
        pos += 1
    if pos < n and text[pos] == "\n":
        pos += 1
    return pos


def insert_head(text: str) -> InsertHead | None:
    """Split `INSERT ... FORMAT name<data>`; None if `text` holds no complete top-level FORMAT clause.

    Scanning stops at the format name, so binary data after it is never looked at. A name that ends
    exactly at the end of `text` is not trusted (more of it may still be on the way).
    """
    it = tokens(text)
    depth = 0
    for token in it:
        if token.kind == "punct" and token.text in "([":
            depth += 1
        elif token.kind == "punct" and token.text in ")]":
            depth -= 1
        elif depth == 0 and token.kind == "word" and token.text.upper() == "FORMAT":
            name = next(it, None)
            if name is None or name.kind != "word" or name.end >= len(text) or not _NAME.match(name.text):
                return None
            return InsertHead(text[:token.start].rstrip(), name.text, _data_offset(text, name.end))
    return None


def _format_clause(text: str) -> tuple[str, int, int] | None:
    """(name, start, end) of a query's trailing `FORMAT name` clause, if it has one.

    Only a FORMAT followed by a name and then the end, `;` or `SETTINGS` counts, so a column called
    `format` (`SELECT format FROM t`) or a function `format(...)` is not mistaken for the clause.
    """
    if not _FORMAT_WORD.search(text):  # spare a large query (long IN lists ...) the Python lexer
        return None
    toks = list(tokens(text))
    found = None
    for i, token in enumerate(toks[:-1]):
        if token.kind != "word" or token.text.upper() != "FORMAT":
            continue
        name = toks[i + 1]
        after = toks[i + 2] if i + 2 < len(toks) else None
        if name.kind == "word" and _NAME.match(name.text) and (
                after is None or after.text == ";" or after.text.upper() == "SETTINGS"):
            found = (name.text, token.start, name.end)
    return found


def output_format(text: str) -> str | None:
    """The format a query asks for with a trailing `FORMAT name` clause, if any."""
    clause = _format_clause(text)
    return clause[0] if clause else None


def without_format(text: str) -> str:
    """The query without its FORMAT clause or trailing `;`, e.g. to wrap it as a subquery."""
    clause = _format_clause(text)
    if clause:
        text = text[:clause[1]] + text[clause[2]:]
    return text.strip().rstrip(";").strip()


def returns_result(text: str) -> bool:
    """Whether the statement produces a result set (as opposed to DDL, SET, INSERT ...)."""
    return first_keyword(text) in _RESULT_KEYWORDS


def is_select(text: str) -> bool:
    return first_keyword(text) in _SELECT_KEYWORDS


def leaves_state(text: str) -> bool:
    """Whether running `text` could change a connection's state (SET, USE, temporary tables, or
    several statements at once), so the connection must not be handed to another request."""
    toks = tokens(text)
    first, second = next(toks, None), next(toks, None)
    if first is None:
        return False
    keyword = first.text.upper()
    if keyword not in _STATELESS_KEYWORDS:
        return True
    if keyword == "CREATE" and second is not None and second.text.upper() == "TEMPORARY":
        return True
    if ";" not in text:
        return False
    ends = [token.end for token in tokens(text) if token.text == ";"]
    return bool(ends) and any(True for _ in tokens(text, ends[0]))
