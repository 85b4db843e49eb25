"""ClickHouse-shaped errors: what clickhouse-connect needs to raise a proper `DatabaseError`.

The client reads the `X-ClickHouse-Exception-Code` header and a body such as
`Code: 62. DB::Exception: Syntax error ... (SYNTAX_ERROR) (version 26.9.2.1)`, and retries on
429/503/504, so every failure maps to 400/404/500-style statuses only (a retried INSERT could
write twice). chDB raises plain `RuntimeError`s whose text already holds `Code: N. DB::Exception`;
they are parsed here, and anything else becomes code 1001 (STD_EXCEPTION) without a traceback.
"""

from __future__ import annotations

import re

SYNTAX_ERROR = 62
NOT_IMPLEMENTED = 48
BAD_ARGUMENTS = 36
UNKNOWN_SETTING = 115
READONLY = 164
CANNOT_DECOMPRESS = 271
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
QUERY_IS_TOO_LARGE = 393
STD_EXCEPTION = 1001

_NAMES = {
    SYNTAX_ERROR: "SYNTAX_ERROR", NOT_IMPLEMENTED: "NOT_IMPLEMENTED", BAD_ARGUMENTS: "BAD_ARGUMENTS",
    UNKNOWN_SETTING: "UNKNOWN_SETTING", READONLY: "READONLY", CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND", SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    QUERY_IS_TOO_LARGE: "QUERY_IS_TOO_LARGE", STD_EXCEPTION: "STD_EXCEPTION",
}
# As ClickHouse's HTTP handler maps them: bad input is the client's fault, unknown objects are 404s.
_BAD_REQUEST = frozenset({6, 25, 26, 27, 32, 33, 36, 38, 41, 53, 62, 72, 115, 117, 167, 168, 223, 441, 456,
                          457})
_NOT_FOUND = frozenset({46, 47, 50, 56, 60, 63, 73, 81, 336})
_FORBIDDEN = frozenset({164, 497, 516})

_CODE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?")
_VERSION = re.compile(r"\(version [^)]*\)\s*$")


class ChError(Exception):
    """A failure to report to the client as a ClickHouse exception."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def make(cls, code: int, text: str) -> ChError:
        """An error raised by the endpoint itself, worded like the server's own."""
        return cls(code, f"Code: {code}. DB::Exception: {text}. ({_NAMES.get(code, 'UNKNOWN')})")

    def body(self, version: str) -> bytes:
        """The response body: the message and the server version, one line as ClickHouse sends it."""
        text = self.message.strip()
        if not _VERSION.search(text):
            text = f"{text} (version {version})"
        return (text + "\n").encode("utf-8", "replace")

    @property
    def http_status(self) -> int:
        if self.code in _BAD_REQUEST:
            return 400
        if self.code in _NOT_FOUND:
            return 404
        if self.code in _FORBIDDEN:
            return 403
        return 500


def from_exception(exc: BaseException) -> ChError:
    """The ClickHouse error behind a chDB (or any) exception; code 1001 when it carries none."""
    if isinstance(exc, ChError):
        return exc
    text = str(exc)
    match = _CODE.search(text)
    if match:
        return ChError(int(match.group(1)), text[match.start():])
    detail = text or type(exc).__name__
    return ChError.make(STD_EXCEPTION, f"{type(exc).__name__}: {detail}" if text else detail)
