"""What `trilha up` prints once the stack is ready, so the first hour needs no guessing: where the
console is, which companies the demo traffic writes, and a token that sees one of them.

The demo's companies are the load generator's (`RecordFactory`), so the names printed here are
always the ones the records carry. The token is made with the same code as `trilha tokens create`
and shown once, like there; a new one each start (old ones stay valid until revoked).
"""

from __future__ import annotations

import asyncio

from query.access import tokens
from services.runtime import clients
from services.runtime.settings import Settings
from services.stack.records import RecordFactory

DEMO_COMPANIES = 3  # `trilha loadgen --companies` default, which `trilha up --demo` uses


def demo_companies(count: int = DEMO_COMPANIES) -> list[str]:
    """The company ids the demo traffic is spread over (company-1 … company-N)."""
    return RecordFactory(companies=count).companies


async def demo_token(settings: Settings, company: str) -> str:
    """A fresh token for `company`, labelled so `trilha tokens list` shows where it came from."""
    ch = await clients.clickhouse(settings)
    try:
        _, token = await tokens.create(ch, company, "demo", "trilha up --demo")
    finally:
        await ch.close()
    return token


def lines(settings: Settings, companies: list[str], token: str | None) -> list[str]:
    """The welcome text; `token` is None when none could be made (the stack still runs)."""
    url = f"http://{settings.query_host}:{settings.query_port}/"
    out = [f"console     {url}",
           f"companies   {', '.join(companies)} (demo traffic; a token sees one company's records)"]
    if token:
        out += [f"token       {token}   (company {companies[0]}; paste it in the console, or",
                f"            curl -s {url}events -H 'Authorization: Bearer {token}' -d '{{\"q\": \"doc{{...}}\"}}')"]
    else:
        out.append(f"token       .venv/bin/trilha tokens create --company {companies[0]}")
    return out


def announce(settings: Settings, demo: bool) -> None:
    """Print the console URL, the demo companies and a ready token (only with demo traffic)."""
    if not demo:
        print(f"console     http://{settings.query_host}:{settings.query_port}/", flush=True)
        return
    companies = demo_companies()
    try:
        token: str | None = asyncio.run(demo_token(settings, companies[0]))
    except Exception:  # noqa: BLE001 - the stack is up either way; say how to make one by hand
        token = None
    print("\n".join(lines(settings, companies, token)), flush=True)
