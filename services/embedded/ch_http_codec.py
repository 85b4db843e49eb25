"""Incremental decompression of request bodies, per `Content-Encoding`.

clickhouse-connect compresses inserts by default: one LZ4 *frame* (or zstd frame, ...) per block,
frames concatenated, sent chunked, with the INSERT statement inside the compressed body. A decoder
is fed raw chunks as they arrive and returns plain bytes, so an insert of any size is streamed into
chDB in constant memory. (aiohttp's own decompression must be off: it would hand us plain bytes
for gzip/deflate only, and fail on lz4/zstd.)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Protocol

import lz4.frame
import zstandard

from services.embedded.ch_errors import BAD_ARGUMENTS, CANNOT_DECOMPRESS, ChError

try:  # brotli is optional, as it is for clickhouse-connect
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None


class Decoder(Protocol):
    def feed(self, data: bytes) -> bytes:
        """Plain bytes for the next raw chunk (possibly empty)."""

    def finish(self) -> bytes:
        """The last plain bytes; raises ChError if the compressed stream was cut short."""


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Concatenated:
    """Concatenated LZ4 frames or gzip members: a fresh decoder starts where the previous one ended.

    Both libraries' decoders expose `decompress`, `eof` and `unused_data`, so one loop serves both;
    a body that stops inside a frame is truncated, whichever codec it used.
    """

    def __init__(self, new: Callable[[], Any], what: str) -> None:
        self._new, self._what = new, what
        self._obj = new()
        self._mid_frame = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._obj.decompress(data))
            self._mid_frame = not self._obj.eof
            if not self._obj.eof:
                break
            data = self._obj.unused_data
            self._obj = self._new()
        return b"".join(out)

    def finish(self) -> bytes:
        if self._mid_frame:
            raise ChError.make(CANNOT_DECOMPRESS, f"{self._what} stream in the request body is truncated")
        return b""


class _Zstd:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)

    def feed(self, data: bytes) -> bytes:
        return self._obj.decompress(data)

    def finish(self) -> bytes:
        return self._obj.flush()


def _LZ4() -> _Concatenated:  # noqa: N802 - a factory named like the classes beside it
    return _Concatenated(lz4.frame.LZ4FrameDecompressor, "LZ4")


def _GZIP() -> _Concatenated:  # noqa: N802
    """gzip (possibly several members) or zlib-wrapped deflate, told apart by their headers."""
    return _Concatenated(lambda: zlib.decompressobj(zlib.MAX_WBITS | 32), "gzip/deflate")


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        return self._obj.process(data)

    def finish(self) -> bytes:
        if not self._obj.is_finished():
            raise ChError.make(CANNOT_DECOMPRESS, "Brotli stream in the request body is truncated")
        return b""


class _Guarded:
    """Turns a codec library's own exception into a ClickHouse error the client can read."""

    def _error(self, exc: Exception) -> ChError:
        return ChError.make(CANNOT_DECOMPRESS, f"Cannot decompress {self._name} request body: {exc}")

    def __init__(self, inner: Decoder, name: str) -> None:
        self._inner = inner
        self._name = name

    def feed(self, data: bytes) -> bytes:
        try:
            return self._inner.feed(data)
        except ChError:
            raise
        except Exception as exc:
            raise self._error(exc) from None

    def finish(self) -> bytes:
        try:
            return self._inner.finish()
        except ChError:
            raise
        except Exception as exc:
            raise self._error(exc) from None


def decoder(content_encoding: str | None) -> Decoder:
    """The decoder for a request's Content-Encoding; raises ChError for one we cannot read."""
    name = (content_encoding or "").strip().lower()
    if name in ("", "identity", "none"):
        return _Identity()
    factories = {"lz4": _LZ4, "zstd": _Zstd, "gzip": _GZIP, "x-gzip": _GZIP, "deflate": _GZIP}
    if brotli is not None:
        factories["br"] = _Brotli
    if name not in factories:
        raise ChError.make(BAD_ARGUMENTS, f"Unknown HTTP content encoding '{content_encoding}'")
    return _Guarded(factories[name](), name)
