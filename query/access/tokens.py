"""API tokens: how they look, how they are stored, and `trilha tokens create|revoke|list`.

A token is `trl_<token_id>_<secret>`: the id finds the row, the secret proves possession. Only
sha256(secret) is stored (the secret is 256 random bits, so a fast hash is enough: there is nothing
to brute-force). The full token is printed once, by `create`, on the last line of its output, so
scripts can take it with `tail -n1`; it is never logged nor stored.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from clickhouse_connect.driver.asyncclient import AsyncClient

from services.runtime import clients, netcheck
from services.runtime.settings import ConfigError, Settings

PREFIX = "trl_"
_TOKEN = re.compile(r"^trl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    company_id: str
    user_id: str
    name: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


def parse(token: str) -> tuple[str, str] | None:
    """(token_id, secret) of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_COLUMNS = "token_id, company_id, user_id, name, secret_hash, created_at, revoked_at"


async def lookup(ch: AsyncClient, token_id: str) -> TokenRow | None:
    """The newest version of a token's row (a revocation is a newer version)."""
    result = await ch.query(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = {{id:String}} "
                            "ORDER BY version DESC LIMIT 1", parameters={"id": token_id})
    return TokenRow(*result.result_rows[0]) if result.result_rows else None


async def ids_created_since(ch: AsyncClient, since_ms: int) -> list[tuple[str, int]]:
    """(token_id, created_at in ms) of every token created at or after `since_ms` (revoked ones too:
    a revoked token is refused by its row, not by being unknown)."""
    result = await ch.query("SELECT token_id, max(toUnixTimestamp64Milli(created_at)) FROM api_tokens "
                            "WHERE created_at >= fromUnixTimestamp64Milli({since:Int64}) GROUP BY token_id",
                            parameters={"since": since_ms})
    return [(row[0], int(row[1])) for row in result.result_rows]


async def create(ch: AsyncClient, company_id: str, user_id: str = "", name: str = "") -> tuple[str, str]:
    """A new token for `company_id`; returns (token_id, full token). The token exists only here."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    await ch.command(
        "INSERT INTO api_tokens (token_id, company_id, user_id, name, secret_hash, created_at, revoked_at, version) "
        "VALUES ({id:String}, {company:String}, {user:String}, {name:String}, {hash:String}, now64(3), NULL, "
        "{version:UInt64})",
        parameters={"id": token_id, "company": company_id, "user": user_id, "name": name,
                    "hash": hash_secret(secret), "version": time.time_ns()})
    return token_id, f"{PREFIX}{token_id}_{secret}"


async def revoke(ch: AsyncClient, token_id: str) -> bool:
    """Mark a token revoked (a newer row version); False if no such token."""
    row = await lookup(ch, token_id)
    if row is None:
        return False
    if row.revoked_at is None:
        await ch.command(
            f"INSERT INTO api_tokens ({_COLUMNS}, version) SELECT {_COLUMNS.replace('revoked_at', 'now64(3)')}, "
            "{version:UInt64} FROM api_tokens WHERE token_id = {id:String} ORDER BY version DESC LIMIT 1",
            parameters={"id": token_id, "version": time.time_ns()})
    return True


async def listing(ch: AsyncClient, company_id: str | None = None) -> list[TokenRow]:
    where = "WHERE company_id = {company:String}" if company_id else ""
    result = await ch.query(f"SELECT {_COLUMNS} FROM api_tokens {where} ORDER BY token_id, version DESC "
                            "LIMIT 1 BY token_id", parameters={"company": company_id or ""})
    return sorted((TokenRow(*row) for row in result.result_rows), key=lambda r: (r.company_id, r.created_at))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser("create", help="create a token; prints it once, on the last line")
    new.add_argument("--company", required=True, help="company whose records the token can read")
    new.add_argument("--user", default="", help="the company's user the token is for (optional)")
    new.add_argument("--name", default="", help="a label to recognise the token by (optional)")
    gone = actions.add_parser("revoke", help="revoke a token by its id (takes effect within seconds)")
    gone.add_argument("token_id", metavar="ID", help="the token id shown by create/list (not the token)")
    show = actions.add_parser("list", help="list tokens (never their secrets)")
    show.add_argument("--company", help="only this company's tokens")


def command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    await netcheck.require_clickhouse(settings)
    ch = await clients.clickhouse(settings)
    try:
        await _require_table(ch)
        if args.action == "create":
            return await _create(ch, args)
        if args.action == "revoke":
            return await _revoke(ch, args.token_id)
        return await _list(ch, args.company)
    finally:
        await ch.close()


async def _require_table(ch: AsyncClient) -> None:
    exists = await ch.query("EXISTS TABLE api_tokens")
    if not exists.result_rows or not exists.result_rows[0][0]:
        raise ConfigError("table api_tokens is missing: run `trilha migrate` first")


async def _create(ch: AsyncClient, args: argparse.Namespace) -> int:
    company = args.company.strip()
    if not company:
        raise ConfigError("--company must not be empty")
    token_id, token = await create(ch, company, args.user.strip(), args.name.strip())
    print(f"token id  {token_id}\ncompany   {company}\nuser      {args.user.strip() or '-'}\n"
          f"name      {args.name.strip() or '-'}\nThe token is shown only now; keep it secret:")
    print(token, flush=True)
    return 0


async def _revoke(ch: AsyncClient, token_id: str) -> int:
    if not await revoke(ch, token_id.strip()):
        print(f"trilha: error: no token with id {token_id!r} (see `trilha tokens list`)", file=sys.stderr)
        return 1
    print(f"token {token_id} revoked (the query service stops accepting it within a few seconds)")
    return 0


async def _list(ch: AsyncClient, company: str | None) -> int:
    print(f"{'ID':<18}{'COMPANY':<24}{'USER':<20}{'CREATED (UTC)':<21}{'STATE':<9}NAME")
    for row in await listing(ch, company):
        state = "revoked" if row.revoked_at else "active"
        print(f"{row.token_id:<18}{row.company_id:<24}{row.user_id or '-':<20}"
              f"{row.created_at:%Y-%m-%d %H:%M:%S}  {state:<9}{row.name or '-'}")
    return 0
