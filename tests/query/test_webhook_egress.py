"""The webhook destination check (`query.reports.egress`) and the connector that enforces it at
delivery (`egress_guard`): no spelling of a non-public address gets through unless allow-listed,
anything else wrong is a 400 — and the guarded connector never opens a connection to a refused
address, checked against a real listener on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from query.errors import BadRequest
from query.reports import egress, egress_guard, signing
from query.reports.egress import Policy, check_url, non_public
from services.runtime.settings import ConfigError
from tests.query import report_support as rs

OPEN = Policy()

REFUSED = [
    "http://127.0.0.1:8123/?query=INSERT+INTO+api_tokens", "https://127.0.0.1/", "https://[::1]/", "https://0.0.0.0/",
    "https://2130706433/", "https://127.1/", "https://0x7f.0.0.1/", "https://0177.0.0.1/", "https://017700000001/",
    "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[::127.0.0.1]/", "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::]/", "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "https://169.254.169.254/latest",
    "https://10.1.2.3/", "https://172.16.0.1/", "https://192.168.1.1/", "https://100.64.0.1/", "https://224.0.0.1/",
    "https://255.255.255.255/", "https://[fc00::1]/", "https://[fe80::1]/", "https://[fe80::1%25eth0]/",
    "https://[ff02::1]/", "https://[::]/", "https://user:pass@hooks.example.com/", "https://@hooks.example.com/",
    "http://hooks.example.com/", "ftp://hooks.example.com/", "https://hooks.example.com:0/",
    "https://hooks.example.com:99999/", "https:// hooks.example.com/", "https://hooks.example.com\\@127.0.0.1/",
    "https://hooks.exämple.com/", "", "https://", "https:///x", "//hooks.example.com/", "https://1.2.3.4.5/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_odd_or_unsafe_destinations_are_refused_with_a_400(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_url(url, OPEN)
    assert refused.value.parameter == "destination.url" and refused.value.message


def test_public_destinations_pass_and_are_rebuilt_from_the_checked_parts() -> None:
    assert str(check_url("https://Hooks.Example.com./trilha?k=1#frag", OPEN).url) == \
        "https://hooks.example.com/trilha?k=1"
    assert check_url("https://8.8.8.8:8443/x", OPEN).ip == ipaddress.ip_address("8.8.8.8")
    assert check_url("https://[2606:4700::1111]/", OPEN).ip == ipaddress.ip_address("2606:4700::1111")


def test_the_allow_list_opens_exactly_what_it_names_and_plain_http_only_there() -> None:
    rules = egress.policy_of("127.0.0.1/32, hooks.internal", False)
    assert check_url("http://127.0.0.1:9000/hook", rules).ip == ipaddress.ip_address("127.0.0.1")
    assert check_url("http://hooks.internal/hook", rules).host == "hooks.internal"
    for url in ("http://127.0.0.2/", "https://[::1]/", "http://8.8.8.8/"):
        with pytest.raises(BadRequest):
            check_url(url, rules)
    assert check_url("http://8.8.8.8/", egress.policy_of("", True)).ip
    with pytest.raises(ConfigError, match="TRILHA_WEBHOOK_ALLOW"):
        egress.policy_of("10.0.0.0/8, not a host!", False)


def test_clickhouse_stays_refused_inside_an_allow_listed_range() -> None:
    rules = egress.policy_of("127.0.0.0/8, ::1/128", True, "http://127.0.0.1:8123")
    for url in ("http://127.0.0.1:8123/?query=SELECT+1", "http://127.0.0.2:8123/", "http://[::ffff:127.0.0.1]:8123/",
                "http://[::1]:8123/"):
        with pytest.raises(BadRequest, match="own database"):
            check_url(url, rules)
    assert check_url("http://127.0.0.1:9000/hook", rules).ip
    named = check_url("http://localhost:8123/", rules)
    assert egress.addresses_allowed(named, rules, [ipaddress.ip_address("127.0.0.1")]) == "Trilha's own database"


# --- property: no spelling of a non-public address is ever accepted --------------------------------------------

_DENIED_V4 = [ipaddress.IPv4Network(n) for n in (  # IANA's special-purpose IPv4 blocks, written out independently
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4")]
_DENIED_V6 = [ipaddress.IPv6Network(n) for n in ("::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
                                                  "2001:db8::/32", "100::/64", "64:ff9b:1::/48", "fec0::/10")]


@st.composite
def non_public_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(_DENIED_V4))
    return net[draw(st.integers(0, net.num_addresses - 1))]


@st.composite
def non_public_v6(draw: st.DrawFn) -> ipaddress.IPv6Address:
    inner = int(draw(non_public_v4()))
    form = draw(st.sampled_from(["mapped", "compat", "nat64", "6to4", "teredo", "native"]))
    if form == "mapped":
        return ipaddress.IPv6Address((0xFFFF << 32) | inner)
    if form == "compat":
        return ipaddress.IPv6Address(inner)
    if form == "nat64":
        return ipaddress.IPv6Address((0x64FF9B << 96) | inner)
    if form == "6to4":
        return ipaddress.IPv6Address((0x2002 << 112) | (inner << 80) | draw(st.integers(0, 2 ** 80 - 1)))
    if form == "teredo":
        return ipaddress.IPv6Address((0x20010000 << 96) | (draw(st.integers(0, 2 ** 64 - 1)) << 32)
                                     | (inner ^ 0xFFFFFFFF))
    net = draw(st.sampled_from(_DENIED_V6))
    return net[draw(st.integers(0, net.num_addresses - 1))]


def v4_spellings(ip: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """The ways inet_aton and friends read an IPv4 address: dotted, one number, short forms, octal, hex."""
    n, parts = int(ip), [int(p) for p in str(ip).split(".")]
    return st.sampled_from([
        str(ip), str(n), hex(n), hex(n).upper().replace("X", "x"), "0" + oct(n)[2:],
        f"{parts[0]}.{(parts[1] << 16) | (parts[2] << 8) | parts[3]}",
        f"{parts[0]}.{parts[1]}.{(parts[2] << 8) | parts[3]}",
        ".".join(f"0{p:o}" for p in parts), ".".join(hex(p) for p in parts), ".".join(f"{p:03d}" for p in parts),
        f"{ip}.", str(ip).replace(".", "%2e"),
    ])


def v6_spellings(ip: ipaddress.IPv6Address) -> st.SearchStrategy[str]:
    forms = [ip.compressed, ip.exploded, ip.exploded.upper(), ip.compressed + "%25lo"]
    if ip.ipv4_mapped:
        forms.append(f"::ffff:{ip.ipv4_mapped}")
    return st.sampled_from([f"[{f}]" for f in forms])


hosts = st.one_of(non_public_v4().flatmap(v4_spellings), non_public_v6().flatmap(v6_spellings))
urls = st.builds(lambda scheme, cred, host, port, path: f"{scheme}://{cred}{host}{port}{path}",
                 st.sampled_from(["http", "https", "HTTPS"]), st.sampled_from(["", "u:p@", "@"]), hosts,
                 st.sampled_from(["", ":80", ":8123", ":443"]), st.sampled_from(["", "/", "/?query=SELECT+1", "/#x"]))


def _os_reads_as(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """What the operating system's resolver makes of a host spelled as a number, if anything."""
    bare = host.strip("[]").split("%", 1)[0].rstrip(".")
    try:
        return ipaddress.ip_address(socket.getaddrinfo(bare, None, flags=socket.AI_NUMERICHOST)[0][4][0])
    except (socket.gaierror, UnicodeError, ValueError):
        return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=urls)
def test_no_spelling_of_a_non_public_address_is_accepted(url: str) -> None:
    try:
        target = check_url(url, OPEN)
    except BadRequest:
        return
    read = _os_reads_as(target.host) or target.ip
    assert read is None or non_public(read) is None, f"{url} accepted, reaches {read}"


@settings(max_examples=300, deadline=None)
@given(ip=st.one_of(non_public_v4(), non_public_v6()), listed=st.booleans())
def test_an_address_is_allowed_only_when_public_or_listed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                                          listed: bool) -> None:
    carried = egress.embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    net = ipaddress.ip_network(carried or ip)  # a single address: the carried IPv4 when there is one
    rules = Policy(networks=(net,) if listed else ())
    assert non_public(ip) is not None
    assert rules.allowed(ip) == listed


@settings(max_examples=800, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.from_regex(r"\A[a-zA-Z]{0,6}://[^\s]{0,80}\Z"),
                      st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=2)))
def test_any_value_is_accepted_or_a_400_never_another_error(text: object) -> None:
    try:
        target = check_url(text, OPEN)
    except BadRequest as exc:
        assert exc.parameter == "destination.url"
        return
    read = _os_reads_as(target.host) or target.ip
    assert read is None or non_public(read) is None


# --- the connector: a refused address is never connected to --------------------------------------------------


async def test_the_guarded_connector_never_connects_to_a_refused_address() -> None:
    hits: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    async with rs.listening(app) as port:
        literal = egress.Target(URL(f"http://127.0.0.1:{port}/b"), "127.0.0.1", ipaddress.ip_address("127.0.0.1"))
        for target, rules in ((check_url(f"https://localhost:{port}/a", OPEN), OPEN),  # resolves to loopback
                              (literal, egress.policy_of("", True)),  # checked earlier, refused now
                              (check_url(f"https://localhost:{port}/c", OPEN), egress.policy_of("::1/128", True))):
            guard = egress_guard.Guard(target, rules)
            async with aiohttp.ClientSession(connector=egress_guard.guarded_connector(guard)) as session:
                with pytest.raises(aiohttp.ClientError):
                    await session.post(target.url, data=b"x")
            assert guard.refused, target.url
        with pytest.raises(BadRequest, match="not public"):
            await egress_guard.check_destination(f"https://localhost:{port}/", OPEN)
        allowed = egress.policy_of("127.0.0.1/32", False)
        target = await egress_guard.check_destination(f"http://127.0.0.1:{port}/ok", allowed)
        guard = egress_guard.Guard(target, allowed)
        async with aiohttp.ClientSession(connector=egress_guard.guarded_connector(guard)) as session:
            async with session.post(target.url, data=b"x") as answer:
                assert answer.status == 200
        await asyncio.sleep(0)
        assert hits == ["/ok"], "only the allow-listed delivery reached the listener"


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_time() -> None:
    secret = signing.new_secret()
    header = signing.signature(secret, b"a;b\r\n1;2\r\n", 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert signing.verify(secret, header, b"a;b\r\n1;2\r\n", now=1_800_000_100)
    assert not signing.verify(secret, header, b"a;b\r\n1;3\r\n", now=1_800_000_100)
    assert not signing.verify(signing.new_secret(), header, b"a;b\r\n1;2\r\n", now=1_800_000_100)
    assert not signing.verify(secret, header, b"a;b\r\n1;2\r\n", now=1_800_001_000), "a replay is stale"
