"""Where a scheduled report goes: a directory on the server, or an HTTP webhook receiving the CSV.

Directories are confined to `<reports_dir>/<company>/`: a schedule names a relative folder and
can never write elsewhere (no absolute paths, no `..`, and the resolved path — symlinks
followed — is checked again at delivery). A file is written to a temporary name and renamed,
and its name is derived from the run's identity, so delivering the same run twice leaves one
complete file. A webhook receives the CSV as a POST with the run's identity in
`Idempotency-Key`, so a receiver can ignore a repeat, and an `X-Trilha-Signature` (see
`signing`); only a 2xx answer counts as delivered and redirects are not followed. The webhook's
address is checked by `egress` at creation and, through `egress_guard`'s connector, on every
connection. What a failed delivery tells the tenant is its class only (refused, could not
connect, timed out, HTTP status) — never which port answered or why, which would make webhooks a
scanner of the operator's network; the operator's log gets the detail (no query string).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from query.errors import BadRequest, shown
from query.reports import egress, egress_guard, signing
from services.runtime.settings import Settings

_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")
_SAFE_COMPANY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REFUSED = "refused destination: the webhook's address is not allowed"


class DeliveryError(Exception):
    """A delivery did not complete. The message is what the tenant sees (run records); `detail` is
    for the operator's log only; `final` failures (a refused destination) are not retried."""

    def __init__(self, message: str, detail: str = "", final: bool = False) -> None:
        super().__init__(message)
        self.detail, self.final = detail or message, final


@dataclass(frozen=True)
class Destination:
    """`kind` is directory (with a relative `path`) or webhook (with a `url`)."""

    kind: str
    path: str = ""
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.kind == "directory":
            return {"type": "directory", "path": self.path}
        return {"type": "webhook", "url": self.url}

    def describe(self) -> str:
        """For run records and logs: a webhook's query string and credentials are left out."""
        if self.kind == "directory":
            return f"directory:{self.path or '.'}"
        parts = urlsplit(self.url)
        return f"webhook:{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def parse(value: Any, parameter: str = "destination", rules: egress.Policy | None = None) -> Destination:
    """`{"type": "directory", "path": "financeiro/diario"}` or `{"type": "webhook", "url": "https://…"}`.

    With `rules` (a new schedule) the webhook URL is checked against them; a stored one is checked
    at delivery, against the rules of that moment."""
    if not isinstance(value, dict):
        raise BadRequest(f"{parameter} must be an object: {{\"type\": \"directory\", \"path\": \"…\"}} or "
                         "{\"type\": \"webhook\", \"url\": \"https://…\"}", parameter)
    kind = value.get("type")
    allowed = {"directory": {"type", "path"}, "webhook": {"type", "url"}}
    if not isinstance(kind, str) or kind not in allowed:
        raise BadRequest(f"{parameter}.type must be directory or webhook, not {shown(kind)}", f"{parameter}.type")
    for name in value:
        if name not in allowed[kind]:
            raise BadRequest(f"unknown field {name!r} in a {kind} {parameter}", f"{parameter}.{name}")
    if kind == "directory":
        return Destination("directory", path=_folder(value.get("path"), f"{parameter}.path"))
    url = value.get("url")
    if rules is not None:
        egress.check_url(url, rules, f"{parameter}.url")
    elif not isinstance(url, str):
        raise BadRequest(f"{parameter}.url must be an https:// URL", f"{parameter}.url")
    return Destination("webhook", url=url.strip())


def base_dir(settings: Settings) -> Path:
    return Path(settings.reports_dir or os.path.join(settings.data_dir, "reports")).resolve()


def company_dir(settings: Settings, company_id: str) -> Path:
    """The company's own folder under the base; ids that are not plain names are hashed."""
    if _SAFE_COMPANY.match(company_id):
        return base_dir(settings) / company_id
    return base_dir(settings) / ("c-" + hashlib.sha256(company_id.encode()).hexdigest()[:32])


def directory_target(settings: Settings, company_id: str, dest: Destination) -> Path:
    """The folder a directory destination writes to, checked (symlinks resolved) to be inside the
    company's folder."""
    root = company_dir(settings, company_id)
    target = (root / dest.path).resolve() if dest.path else root.resolve()
    if target != root.resolve() and not target.is_relative_to(root.resolve()):
        raise DeliveryError(f"destination {dest.path!r} resolves outside the reports folder; not written")
    return target


def to_directory(settings: Settings, company_id: str, dest: Destination, source: Path, file_name: str) -> str:
    """Copy the finished CSV into place atomically; returns the path written (for the run record)."""
    folder = directory_target(settings, company_id, dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{file_name}.part"
        shutil.copyfile(source, partial)
        os.replace(partial, folder / file_name)
    except OSError as exc:
        raise DeliveryError("could not write the report into its folder on the server",
                            f"cannot write {folder / file_name}: {exc.strerror or exc}") from None
    return str(folder / file_name)


async def to_webhook(settings: Settings, dest: Destination, secret: str, source: Path, file_name: str,
                     headers: dict[str, str]) -> str:
    """POST the CSV file (streamed from disk), signed; returns a short outcome such as 'HTTP 200'."""
    rules = egress.policy(settings)
    try:
        target = egress.check_url(dest.url, rules)
    except BadRequest as exc:
        raise DeliveryError(REFUSED, f"refused at delivery: {exc.message}", final=True) from None
    if not secret:
        raise DeliveryError("refused: this schedule predates signed webhooks; delete it and create it again",
                            final=True)
    guard = egress_guard.Guard(target, rules)
    all_headers = {"Content-Type": "text/csv; charset=utf-8",
                   "Content-Disposition": f'attachment; filename="{file_name}"', **headers,
                   signing.HEADER: signing.signature(secret, source)}
    timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_s, sock_connect=settings.webhook_connect_timeout_s)
    try:
        async with aiohttp.ClientSession(connector=egress_guard.guarded_connector(guard), timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            with source.open("rb") as body:
                async with session.post(target.url, data=body, headers=all_headers, allow_redirects=False) as answer:
                    await answer.read()
                    if not 200 <= answer.status < 300:
                        raise DeliveryError(f"the receiver answered HTTP {answer.status}")
                    return f"HTTP {answer.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _failure(exc, guard, dest, settings) from None


def _failure(exc: BaseException, guard: egress_guard.Guard, dest: Destination, settings: Settings) -> DeliveryError:
    """The class of a failed delivery for the tenant; the scrubbed detail for the operator's log."""
    detail, query = str(exc).replace(dest.url, dest.describe()), urlsplit(dest.url).query
    detail = f"{type(exc).__name__}: {detail.replace(query, '…') if query else detail}"[:500]
    if guard.refused:
        return DeliveryError(REFUSED, f"refused at delivery ({guard.refused}): {detail}", final=True)
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return DeliveryError(f"timed out: the receiver did not answer within {settings.webhook_timeout_s:g} s",
                             detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DeliveryError("could not connect to the receiver", detail)
    return DeliveryError("the connection to the receiver failed during the delivery", detail)


def _folder(value: Any, parameter: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{parameter} must be a relative folder name such as financeiro/diario", parameter)
    parts = [p for p in value.strip().strip("/").split("/") if p]
    if value.strip().startswith("/") or not parts or not all(_FOLDER.match(p) and p not in {".", ".."} for p in parts):
        raise BadRequest(f"{parameter} must be a relative folder under the server's reports folder (letters, "
                         f"digits, . _ - and spaces, separated by /; no .. and no leading /), not {value!r}",
                         parameter)
    if len(parts) > 8:
        raise BadRequest(f"{parameter} has more than 8 levels of folders", parameter)
    return "/".join(parts)
