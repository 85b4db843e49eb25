"""The first exchange of ClickHouse's native TCP protocol, by hand: enough to tell that a port is
ClickHouse's and whether it lets a user in (clickhouse-connect has no native client)."""

from __future__ import annotations

import socket
import struct


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(value: str) -> bytes:
    return _varint(len(value.encode())) + value.encode()


def _read_varint(sock: socket.socket) -> int:
    shift = result = 0
    while True:
        byte = sock.recv(1)[0]
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result


def _read_string(sock: socket.socket) -> str:
    size, data = _read_varint(sock), b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data.decode()


def native_hello(port: int, user: str, password: str) -> tuple[int, str, int, int]:
    """The native protocol's first exchange: our Hello, then the server's first packet (its type,
    and for Hello (0) the server's name and version; for an Exception (2), its code and name)."""
    hello = (_varint(0) + _string("trilha-test") + _varint(26) + _varint(9) + _varint(54460)
             + _string("default") + _string(user) + _string(password))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(hello)
        kind = _read_varint(sock)
        if kind == 2:  # Exception: Int32 code, then name
            code = struct.unpack("<i", sock.recv(4))[0]
            return kind, _read_string(sock), code, 0
        return kind, _read_string(sock), _read_varint(sock), _read_varint(sock)
