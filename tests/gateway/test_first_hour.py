"""The README's first hour, as a new user meets it: its `trilha tokens create`, `trilha gateway` and
`trilha loadgen` lines, read from README.md and run as written (only addresses and the loader's
duration changed, so the test owns its ports and ends quickly), from a shell with no TRILHA_*
setting beyond where the broker and ClickHouse are — so producers ask the embedded broker for
idempotence, as they do next to `make run` — then every record found again through the Events API."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web

from services.runtime import clients
from services.runtime.netcheck import wait_for_port
from services.runtime.settings import Settings
from services.stack import welcome
from services.stack.clickhouse_auth import SECRET_FILE
from tests.gateway.helpers import ingested
from tests.query.support import QueryService, bearer, create_token, query_service
from tests.stack import ROOT, Stack, free_port

README = ROOT / "README.md"


def readme_command(prefix: str) -> list[str]:
    """The README line that starts with `prefix`, its comment cut, split as a shell splits it."""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith(prefix):
            return shlex.split(line.split(" #", 1)[0])
    raise AssertionError(f"README.md has no line starting with {prefix!r}")


def with_option(argv: list[str], name: str, value: str) -> list[str]:
    at = argv.index(name)
    return [*argv[:at + 1], value, *argv[at + 2:]]


def run(argv: list[str]) -> list[str]:
    """`trilha …` exactly as typed, through this checkout's code."""
    assert argv[0] == "trilha", argv
    return [sys.executable, "-m", "services.cli", *argv[1:]]


def user_env(stack: Stack, topic: str, data_dir: Path) -> dict[str, str]:
    """A user's shell: no TRILHA_* but the engines' addresses (idempotence left at its default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRILHA_")}
    s = stack.settings
    if s.clickhouse_user != "default":  # as next to `make run`: the data dir holds the password trilha up made
        (data_dir / SECRET_FILE).write_text(s.clickhouse_password)
    return {**env, "TRILHA_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "TRILHA_CLICKHOUSE_URL": s.clickhouse_url, "TRILHA_DATA_DIR": str(data_dir), "TRILHA_KAFKA_TOPIC": topic,
            "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
async def topic(stack: Stack) -> AsyncIterator[Settings]:
    """A topic of this test's own, with a real `trilha ingest` writing it into ClickHouse."""
    async with ingested(stack, f"first-hour-{uuid.uuid4().hex[:8]}", "ingest-first-hour") as settings:
        yield settings


@pytest.fixture(scope="module")
async def events(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-first-hour") as running:
        yield running


def _token(argv: list[str], env: dict[str, str]) -> str:
    made = subprocess.run(run(argv), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


async def _upstream() -> tuple[web.AppRunner, int]:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"Result": [{"path": request.path}], "Status": {"code": 200}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _found(events: QueryService, token: str, query_ids: list[str], timeout: float = 90) -> list[str]:
    """Poll the Events API until every QueryId answers 200; returns those still missing at the end."""
    missing, deadline = list(query_ids), time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        answers = [await events.post("/events", {"QueryId": q}, bearer(token)) for q in missing]
        missing = [q for q, a in zip(missing, answers, strict=True) if a.status != 200]
        if missing:
            await asyncio.sleep(0.5)
    return missing


async def _topic_records(settings: Settings, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    consumer = clients.kafka_consumer(settings, settings.kafka_topic, group_id=None)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [orjson.loads(m.value) for m in batch]
    finally:
        await consumer.stop()
    return records


async def test_readme_gateway_and_loadgen_deliver_and_the_events_api_finds_them(
        stack: Stack, topic: Settings, events: QueryService, tmp_path: Path) -> None:
    env = user_env(stack, topic.kafka_topic, tmp_path)
    acme = _token(readme_command("trilha tokens create --company acme"), env)
    first_company = _token(readme_command("trilha tokens create --company company-1"), env)

    upstream, upstream_port = await _upstream()
    listen = free_port()
    gateway = readme_command("trilha gateway")
    gateway = with_option(with_option(gateway, "--upstream", f"http://127.0.0.1:{upstream_port}"),
                          "--listen", f"127.0.0.1:{listen}")
    log = open(tmp_path / "gateway.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(run(gateway), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", listen, 60), (tmp_path / "gateway.log").read_text()
        ids = []
        async with ClientSession() as session:
            for n in range(5):
                async with session.get(f"http://127.0.0.1:{listen}/v1/pessoas/{n}") as answer:
                    assert answer.status == 200
                    ids.append(answer.headers["X-Query-Id"])
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
        log.close()
        await upstream.cleanup()
    gateway_log = (tmp_path / "gateway.log").read_text()
    assert "kafka delivery failed" not in gateway_log, gateway_log
    assert await _found(events, acme, ids) == [], "the gateway's calls are found by QueryId"

    loadgen = with_option(readme_command("trilha loadgen"), "--duration", "2")
    loaded = await asyncio.to_thread(subprocess.run, run(loadgen), env=env, cwd=ROOT, capture_output=True,
                                     text=True, timeout=180)
    assert loaded.returncode == 0, loaded.stderr
    assert "kafka unreachable" not in loaded.stderr
    assert loaded.stderr.count("does not support idempotent producers") == 1, "one warning, then delivery"
    rate = float(loadgen[loadgen.index("--rate") + 1])
    records = [r for r in await _topic_records(topic, int(rate * 2)) if r["company_id"] != "acme"]
    assert len(records) >= rate * 2 * 0.9, len(records)
    companies = sorted({r["company_id"] for r in records})
    assert companies == [f"company-{n}" for n in range(1, int(loadgen[loadgen.index("--companies") + 1]) + 1)]
    for company in companies:
        token = first_company if company == "company-1" else await asyncio.to_thread(create_token, stack, company)
        sample = [r["query_id"] for r in records if r["company_id"] == company][:10]
        assert await _found(events, token, sample) == [], f"{company}'s records are found by QueryId"


def test_a_loader_that_cannot_reach_kafka_exits_non_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRILHA_")}
    env.update(TRILHA_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", TRILHA_DATA_DIR=str(tmp_path))
    done = subprocess.run(run(with_option(readme_command("trilha loadgen"), "--duration", "1")), env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "cannot reach Kafka" in done.stderr


def test_the_welcome_names_the_demo_companies_and_a_token_that_sees_one(stack: Stack, events: QueryService,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = replace(stack.settings, query_port=int(events.base.rsplit(":", 1)[1]))
    welcome.announce(settings, demo=True)
    printed = capsys.readouterr().out
    assert f"console     {events.base}/" in printed
    assert "company-1, company-2, company-3" in printed
    token = re.search(r"token +(trl_\S+)", printed).group(1)
    request = urllib.request.Request(f"{events.base}/reports/api-logs?page_size=1", headers=bearer(token))
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200, "the printed token is a working token (of company-1)"
