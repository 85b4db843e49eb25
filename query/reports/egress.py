"""Where a tenant's webhook may send: public addresses only, unless the operator allow-lists more.

A webhook URL is written by a tenant but fetched by the scheduler from inside the operator's
network, so without a check it is a way in: to ClickHouse's HTTP port (which runs the SQL in a
`?query=`), to cloud metadata (169.254.169.254), to anything on loopback. The rules:

- the URL is plain: `https` (http only for allow-listed destinations or with
  `TRILHA_WEBHOOK_ALLOW_HTTP`), no credentials, a host that is a DNS name, a dotted-quad IPv4 or a
  bracketed IPv6 — never the alternate IPv4 spellings (`2130706433`, `0x7f.1`, `0177.0.0.1`,
  `127.1`) that resolvers turn into addresses nobody reading the URL would expect;
- every address it resolves to is public: not loopback, private, link-local, shared (100.64/10),
  multicast, unspecified, reserved, documentation or benchmarking, and an IPv6 address that embeds
  an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged by the IPv4 it carries;
- `TRILHA_WEBHOOK_ALLOW` (comma-separated CIDRs and host names) lets an operator open exactly the
  internal receivers they mean.

The check runs when a schedule is created (400 saying what to fix) and again at every delivery,
where `guarded_connector` applies it to the very socket address being connected — after DNS,
for every address tried — so a name that changes its answer (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from yarl import URL

from query.errors import BadRequest
from services.runtime.settings import ConfigError, Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_DENIED = {  # IANA IPv4 special-purpose registry: nothing here is a tenant's public receiver
    "0.0.0.0/8": "unspecified", "10.0.0.0/8": "private", "100.64.0.0/10": "shared",
    "127.0.0.0/8": "loopback", "169.254.0.0/16": "link-local", "172.16.0.0/12": "private",
    "192.0.0.0/24": "reserved", "192.0.2.0/24": "documentation", "192.31.196.0/24": "reserved",
    "192.52.193.0/24": "reserved", "192.88.99.0/24": "reserved", "192.168.0.0/16": "private",
    "192.175.48.0/24": "reserved", "198.18.0.0/15": "benchmarking", "198.51.100.0/24": "documentation",
    "203.0.113.0/24": "documentation", "224.0.0.0/4": "multicast", "240.0.0.0/4": "reserved",
}
_V6_DENIED = {  # inside 2000::/3 (the only global unicast block); everything outside it is refused too
    "2001::/23": "reserved", "2001:db8::/32": "documentation", "3fff::/20": "documentation",
}
_V4_NETS = [(ipaddress.IPv4Network(n), why) for n, why in _V4_DENIED.items()]
_V6_NETS = [(ipaddress.IPv6Network(n), why) for n, why in _V6_DENIED.items()]
_GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")
_LOOPBACK_V4, _LOOPBACK_V6 = ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"),)
_COMPAT = ipaddress.IPv6Network("::/96")
_DOTTED_QUAD = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
ALLOW_HINT = " (an operator can allow internal receivers with TRILHA_WEBHOOK_ALLOW)"
HELP = "a webhook must be a public https:// URL such as https://hooks.example.com/trilha"


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public(ip: Address) -> str | None:
    """Why `ip` is not a public address ("loopback", "private", …), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped"
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = non_public(inner)
            return f"{why} (embedded in IPv6)" if why else None
        if ip not in _GLOBAL_V6:
            return "loopback" if ip.is_loopback else "non-global IPv6"
        return next((why for net, why in _V6_NETS if ip in net), None)
    return next((why for net, why in _V4_NETS if ip in net), None)


@dataclass(frozen=True)
class Policy:
    """The operator's allow-list (`TRILHA_WEBHOOK_ALLOW`) and whether plain http is allowed."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()
    allow_http: bool = False
    protected: tuple[tuple[Network, int], ...] = ()  # Trilha's own ClickHouse: never, allow-listed or not

    def protects(self, ip: Address, port: int | None) -> bool:
        """Whether (ip, port) is a service of this installation that no webhook may reach."""
        inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        return any(a in net and port == p for a in (ip, inner) if a is not None for net, p in self.protected
                   if net.version == a.version)

    def allowed(self, ip: Address) -> bool:
        """Listed by the operator, or public (an embedded IPv4 may be listed too)."""
        return self.listed(ip) or non_public(ip) is None

    def listed(self, ip: Address) -> bool:
        inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        return any(a in net for a in (ip, inner) if a is not None for net in self.networks
                   if net.version == a.version)


def policy(settings: Settings) -> Policy:
    """The policy of these settings; a wrong allow-list entry is a ConfigError naming it."""
    return policy_of(settings.webhook_allow, settings.webhook_allow_http, settings.clickhouse_url)


@lru_cache(maxsize=8)
def policy_of(allow: str, allow_http: bool, clickhouse_url: str = "") -> Policy:
    """The policy of a `TRILHA_WEBHOOK_ALLOW` value and `TRILHA_WEBHOOK_ALLOW_HTTP` (cached: parsed once).

    ClickHouse's own HTTP address stays refused even inside an allow-listed range: its `?query=`
    runs SQL, which is how issue 10's tenant minted a token for another company."""
    networks, hosts = [], set()
    for entry in (e.strip().lower() for e in allow.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            if not all(_LABEL.match(label) for label in entry.rstrip(".").split(".")):
                raise ConfigError(f"TRILHA_WEBHOOK_ALLOW: {entry!r} is neither a CIDR (10.1.0.0/16) nor a "
                                  "host name (hooks.internal)") from None
            hosts.add(entry.rstrip("."))
    return Policy(tuple(networks), frozenset(hosts), allow_http, _protected(clickhouse_url))


def _protected(url: str) -> tuple[tuple[Network, int], ...]:
    """ClickHouse's (address, port) pairs; on loopback, the whole loopback range (127.0.0.2 reaches it too)."""
    if not url:
        return ()
    parts = URL(url)
    port = parts.port or 8123
    try:
        found = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(parts.host or "", port)}
    except (OSError, UnicodeError, ValueError):
        found = set()
    nets: list[Network] = []
    for ip in found:
        nets += [_LOOPBACK_V4, _LOOPBACK_V6] if ip.is_loopback else [ipaddress.ip_network(ip)]
    return tuple((net, port) for net in dict.fromkeys(nets))


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: `url` is rebuilt from the checked parts, so what is sent is what was checked."""

    url: URL
    host: str
    ip: Address | None = field(default=None)

    @property
    def https(self) -> bool:
        return self.url.scheme == "https"


def check_url(text: object, rules: Policy, parameter: str = "destination.url") -> Target:
    """The URL's shape and, for an IP literal, its address; raises BadRequest saying what to fix."""
    if not isinstance(text, str) or not text.strip() or len(text) > 2048:
        raise BadRequest(f"{parameter} must be a text of at most 2048 characters: {HELP}", parameter)
    text = text.strip()
    if not text.isascii() or any(c <= " " or c in "\\\x7f" for c in text):
        raise BadRequest(f"{parameter} may hold only printable ASCII without spaces or backslashes "
                         "(percent-encode the path, use punycode for international names)", parameter)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in {"http", "https"}:
        raise BadRequest(f"{parameter} must start with https://: {HELP}", parameter)
    authority, path = _split_authority(rest)
    if "@" in authority:
        raise BadRequest(f"{parameter} must not carry credentials (user:password@): receivers verify the "
                         "X-Trilha-Signature header instead", parameter)
    host, ip, port = _host_and_port(authority, parameter)
    target = Target(_rebuild(scheme, host, ip, port, path, parameter), host, ip)
    if ip is not None and rules.protects(ip, target.url.port):
        raise BadRequest(f"{parameter} points to Trilha's own database: {HELP}", parameter)
    if ip is not None and not rules.allowed(ip):
        raise BadRequest(f"{parameter} points to an address that is not public ({non_public(ip)}): {HELP}"
                         f"{ALLOW_HINT}", parameter)
    if not target.https and not http_allowed(target, rules, ()) and (ip is not None or not rules.networks):
        raise BadRequest(f"{parameter} must use https://; plain http is only for destinations the operator "
                         "allow-lists (TRILHA_WEBHOOK_ALLOW)", parameter)
    return target


def http_allowed(target: Target, rules: Policy, addresses: Iterable[Address]) -> bool:
    """Plain http: only by operator's choice, for a listed host, or when every address is listed."""
    found = list(addresses) if target.ip is None else [target.ip]
    return rules.allow_http or target.host in rules.hosts or (bool(found) and all(map(rules.listed, found)))


def addresses_allowed(target: Target, rules: Policy, addresses: list[Address], port: int | None = None
                      ) -> str | None:
    """None when every address may be reached for this target, else the class of the first refusal."""
    port = target.url.port if port is None else port
    if any(rules.protects(ip, port) for ip in addresses):
        return "Trilha's own database"
    if target.host in rules.hosts:
        return None
    for ip in addresses:
        if not rules.allowed(ip):
            return non_public(ip) or "refused"
    if not target.https and not http_allowed(target, rules, addresses):
        return "plain http"
    return None


def _split_authority(rest: str) -> tuple[str, str]:
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return rest[:cut], rest[cut:]


def _host_and_port(authority: str, parameter: str) -> tuple[str, Address | None, int | None]:
    if authority.startswith("["):
        inside, _, tail = authority[1:].partition("]")
        if "%" in inside:
            raise BadRequest(f"{parameter} must not name an IPv6 zone (%...): {HELP}", parameter)
        try:
            ip: Address | None = ipaddress.IPv6Address(inside)
        except ValueError:
            raise BadRequest(f"{parameter} has an invalid IPv6 address in [...]", parameter) from None
        host = ip.compressed
    else:
        host, colon, tail = authority.partition(":")
        tail = colon + tail
        host = host.lower().removesuffix(".")
        ip = ipaddress.IPv4Address(host) if _DOTTED_QUAD.match(host) else None
        if ip is None:
            _check_name(host, parameter)
    return host, ip, _port(tail, parameter)


def _check_name(host: str, parameter: str) -> None:
    labels = host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise BadRequest(f"{parameter} must have a host: a DNS name, a.b.c.d or [IPv6]", parameter)
    if _NUMERIC_LABEL.match(labels[-1]):
        raise BadRequest(f"{parameter} has a host that reads as a number: write an IPv4 address as four decimal "
                         "numbers a.b.c.d, without leading zeros, or use a DNS name", parameter)


def _port(tail: str, parameter: str) -> int | None:
    if not tail:
        return None
    digits = tail[1:] if tail.startswith(":") else "x"
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise BadRequest(f"{parameter} has an invalid port: use a number from 1 to 65535", parameter)
    return int(digits)


def _rebuild(scheme: str, host: str, ip: Address | None, port: int | None, path: str, parameter: str) -> URL:
    path, _, _fragment = path.partition("#")
    path, _, query = path.partition("?")
    try:
        bracketed = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
        url = URL.build(scheme=scheme, host=bracketed, port=port, path=path or "/", query_string=query, encoded=True)
        same = (url.raw_host or "").strip("[]").lower() == host
    except ValueError:
        raise BadRequest(f"{parameter} is not a valid URL: {HELP}", parameter) from None
    if not same:
        raise BadRequest(f"{parameter} is not a valid URL: {HELP}", parameter)
    return url


def sockaddr_ip(sockaddr: tuple) -> Address:
    """The address of a socket address tuple (IPv6 scope kept, so a scoped address is refused)."""
    ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and len(sockaddr) > 3 and sockaddr[3]:
        return ipaddress.IPv6Address(f"{ip}%{sockaddr[3]}")
    return ip
