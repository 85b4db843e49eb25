"""The connection side of the webhook policy (`query.reports.egress`): an aiohttp connector that
resolves a name once, refuses it when any address is not allowed, and checks again the exact
socket address of every connect() — so a DNS answer that changes between the check and the
connection (rebinding), an IP literal (which aiohttp does not resolve) or a second address tried
by happy eyeballs can never reach an address the policy refuses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from query.errors import BadRequest
from query.reports.egress import (
    ALLOW_HINT,
    HELP,
    Address,
    Policy,
    Target,
    addresses_allowed,
    check_url,
    http_allowed,
    sockaddr_ip,
)

RESOLVE_TIMEOUT_S = 3.0


async def check_destination(text: object, rules: Policy, parameter: str = "destination.url") -> Target:
    """`check_url`, then the name's DNS answer (when it has one within a few seconds) checked too.

    A name that does not resolve now is accepted: the check at delivery decides then.
    """
    target = check_url(text, rules, parameter)
    if target.ip is not None:
        return target
    addresses = await resolve(target.host)
    why = addresses_allowed(target, rules, addresses)
    if addresses and why is not None:
        raise BadRequest(f"{parameter}: the host resolves to an address that is not public ({why}): {HELP}"
                         f"{ALLOW_HINT}", parameter)
    if not addresses and not target.https and not http_allowed(target, rules, ()):
        raise BadRequest(f"{parameter} must use https://; plain http is only for allow-listed destinations",
                         parameter)
    return target


async def resolve(host: str) -> list[Address]:
    """The host's addresses, or [] when it does not resolve within RESOLVE_TIMEOUT_S."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return [sockaddr_ip(info[4]) for info in infos]


class Refused(OSError):
    """A connection the policy does not allow; raised before the socket connects."""


class Guard:
    """Applies the policy to every address the client is about to connect to, and remembers refusals."""

    def __init__(self, target: Target, rules: Policy) -> None:
        self.target, self.rules, self.refused = target, rules, ""

    def socket(self, addr_info: tuple) -> socket.socket:
        """aiohttp's socket_factory: the last point before connect(), with the final address."""
        family, kind, proto, _, sockaddr = addr_info
        why = addresses_allowed(self.target, self.rules, [sockaddr_ip(sockaddr)], sockaddr[1])
        if why is not None:
            self.refused = why
            raise Refused(f"destination refused: {why}")
        return socket.socket(family=family, type=kind, proto=proto)


class _CheckedResolver(AbstractResolver):
    """Resolves once and hands the connector only addresses the guard allows (refusing when none is)."""

    def __init__(self, guard: Guard) -> None:
        self.guard, self.inner = guard, aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        why = addresses_allowed(self.guard.target, self.guard.rules,
                                [ipaddress.ip_address(r["host"]) for r in found], port or None)
        if why is not None:
            self.guard.refused = why
            raise Refused(f"destination refused: {why}")
        return found

    async def close(self) -> None:
        await self.inner.close()


def guarded_connector(guard: Guard) -> aiohttp.TCPConnector:
    """A connector that checks the resolved addresses and, again, each socket address it connects to."""
    return aiohttp.TCPConnector(resolver=_CheckedResolver(guard), socket_factory=guard.socket,
                                use_dns_cache=False, force_close=True)
