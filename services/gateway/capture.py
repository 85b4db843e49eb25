"""Turning one HTTP exchange into record fields safely: bodies, caller address, secrets, contract limits.

Kept apart from the aiohttp glue so the rules (what is redacted, which address is believed, how
a body too large to keep is shown) read in one place and are the same for the middleware and
the proxy.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson

from schemas import call_record_schema

REDACTED = "[redacted]"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
               "application/javascript", "+json", "+xml")


@dataclass
class Captured:
    """The first bytes of a body (up to the cap) and its full size, as seen on the wire."""

    head: bytearray = field(default_factory=bytearray)
    size: int = 0
    content_type: str = ""
    encoding: str = ""  # Content-Encoding
    cap: int = 64 * 1024

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]


class Redactor:
    """Hides values whose name contains a secret word (Authorization, password, token... configurable)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(w for w in (_norm(w) for w in words) if w)
        names = "|".join("[-_]?".join(re.escape(c) for c in w) for w in self.words) or "(?!)"
        key = rf'[^"\\]*(?:{names})[^"\\]*'
        self._json_text = re.compile(rf'("{key}"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}}\]\s]+)', re.IGNORECASE)
        self._pairs = re.compile(rf'((?:^|(?<=[?&;\s]))[^=&;\s]*(?:{names})[^=&;\s]*=)[^&;\s]*',
                                 re.IGNORECASE)
        self._schemes = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
        self._known: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        """Memoised: the same few member names come back in every body."""
        known = self._known.get(name)
        if known is None:
            key = _norm(name)
            known = any(w in key for w in self.words)
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[name] = known
        return known

    def value(self, value: Any) -> Any:
        """A JSON value with every secret-named member replaced, at any depth."""
        if isinstance(value, dict):
            secret = self.is_secret
            return {k: REDACTED if secret(str(k)) else self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self._credentials(value)
        return value

    def _credentials(self, text: str) -> str:
        """`Bearer xyz` and the like inside a string; a cheap test first, as most strings have none."""
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered or "token" in lowered:
            return self._schemes.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        return text

    def text(self, text: str) -> str:
        """Free text (a cut-off JSON document, a form, a log line): best-effort pattern redaction."""
        if "=" in text or ":" in text:
            text = self._json_text.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
            text = self._pairs.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        return self._credentials(text)

    def query(self, query_string: str) -> str:
        """A URL query with secret parameters' values hidden; everything else byte for byte."""
        if not query_string:
            return query_string
        parts = []
        for part in query_string.split("&"):
            name, eq, _ = part.partition("=")
            parts.append(f"{name}={REDACTED}" if eq and self.is_secret(unquote_plus(name)) else part)
        return "&".join(parts)


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


# -- bodies ---------------------------------------------------------------------------------------

def body_value(body: Captured, redactor: Redactor) -> Any:
    """What a record shows of a body: parsed JSON or form when whole, else text, else a size note.

    A body larger than the cap is kept as its first bytes of text with a note of its full size, so
    a record stays bounded however large the payload was.
    """
    if body.size == 0:
        return None
    raw, complete = _decoded(body)
    if raw is None:
        return {"content_encoding": body.encoding, "bytes": body.size}
    kind = body.content_type.lower()
    if complete and ("json" in kind or (not kind and raw[:1] in (b"{", b"["))):
        try:
            return redactor.value(orjson.loads(raw))
        except orjson.JSONDecodeError:
            pass
    if complete and "x-www-form-urlencoded" in kind:
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return redactor.value(dict(pairs))
    if not kind or any(t in kind for t in _TEXT_TYPES) or _is_utf8(raw):
        text = redactor.text(raw.decode("utf-8", "replace"))
        return text if complete else f"{text}… [truncated: {body.size} bytes in all]"
    return {"content_type": body.content_type, "bytes": body.size}


def _decoded(body: Captured) -> tuple[bytes | None, bool]:
    """The captured bytes without their Content-Encoding (gzip and deflate), and whether they are whole."""
    complete = body.size <= len(body.head)
    encoding = body.encoding.lower().strip()
    if encoding in ("", "identity"):
        return bytes(body.head), complete
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return None, complete
    wbits = 47 if "gzip" in encoding else 15  # 47: gzip or zlib header, detected
    try:
        inflater = zlib.decompressobj(wbits)
        raw = inflater.decompress(bytes(body.head), body.cap)
    except zlib.error:
        return None, complete
    return raw, complete and inflater.eof and not inflater.unconsumed_tail


def _is_utf8(raw: bytes) -> bool:
    try:
        raw[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 4090  # a character cut at the end of the sample is fine
    return True


# -- the caller's address -------------------------------------------------------------------------

def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """'10.0.0.0/8, 127.0.0.1' → networks; a bad entry is a ValueError naming it."""
    items = spec.split(",") if isinstance(spec, str) else spec
    networks = []
    for item in (i.strip() for i in items):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def parse_ip(value: str | None) -> IPAddress | None:
    """An address from a peer or a forwarded hop ('1.2.3.4', '1.2.3.4:5', '[::1]:5'); None if not one."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.split(":")[0]
    try:
        address = ipaddress.ip_address(value.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The caller: the peer, unless the peer is a trusted proxy, then the nearest untrusted hop.

    X-Forwarded-For is read right to left (nearest hop first) and only as far as the hops are
    trusted proxies, so a client cannot choose its recorded address by sending the header itself.
    """
    address = parse_ip(peer)
    if address is None:
        return None
    if not any(address in net for net in trusted):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_address = parse_ip(hop)
        if hop_address is None:
            break
        address = hop_address
        if not any(address in net for net in trusted):
            break
    return str(address)


# -- the contract's limits ------------------------------------------------------------------------

_PROPERTIES: dict[str, Any] = call_record_schema()["properties"]
_MAX_LENGTH = {name: spec["maxLength"] for name, spec in _PROPERTIES.items() if "maxLength" in spec}
_Q_PATTERN = re.compile(_PROPERTIES["q"]["pattern"])
_TAGS = _PROPERTIES["tags"]


def fit_to_contract(record: dict[str, Any]) -> list[str]:
    """Cut what a hook or a request produced to the contract's limits, so the call is still recorded.

    Returns what was changed (for a log line). Strings are cut to their maximum length; a `q`
    that does not follow `key{value},...` is dropped rather than the whole record lost.
    """
    notes = []
    for name, limit in _MAX_LENGTH.items():
        value = record.get(name)
        if isinstance(value, str) and len(value) > limit:
            record[name] = value[:limit]
            notes.append(f"{name} cut to {limit} characters")
    q = record.get("q")
    if q is not None and (not isinstance(q, str) or _Q_PATTERN.search(q) is None):
        del record["q"]
        notes.append("q dropped: not key{value},...")
    tags = record.get("tags")
    if tags is not None:
        record["tags"] = _fit_tags(tags) if isinstance(tags, dict) else None
        if record["tags"] != tags:
            notes.append("tags cut to the contract's limits")
        if not record["tags"]:
            del record["tags"]
    return notes


def _fit_tags(tags: dict[Any, Any]) -> dict[str, str]:
    key_max = _TAGS["propertyNames"]["maxLength"]
    value_max = _TAGS["additionalProperties"]["maxLength"]
    fitted: dict[str, str] = {}
    for key, value in list(tags.items())[:_TAGS["maxProperties"]]:
        name = str(key)[:key_max]
        if name and value is not None:
            fitted[name] = (value if isinstance(value, str) else str(value))[:value_max]
    return fitted
