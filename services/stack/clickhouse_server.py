"""ClickHouse's own HTTP and native TCP servers, run from the `chdb-core` wheel in this process.

chdb's one-shot `_chdb.query(sql, format, path=DATA)` runs a whole clickhouse-local
(`DB::LocalServer`), which, unlike `chdb.connect()`, can start the real servers: `SYSTEM START
LISTEN HTTP; SYSTEM START LISTEN TCP` followed by a query that never ends keeps them up for as
long as the call runs. Clients must log in as the configured user (clickhouse_auth.py).
LocalServer reads its ports from `config.xml` in the current directory
(the call takes no flags), so the caller runs in a folder of its own holding that file.

Stopping: a signal only sets a flag (the call runs in a thread, the main thread waits on it);
then `KILL QUERY ... SYNC` over our own HTTP port ends the blocking query, the call returns and
LocalServer shuts its servers down and flushes, so the process exits 0 without a forced exit.
The call's output format becomes the HTTP interface's default format: TabSeparated, as on a
real server. `_chdb.query` is not a documented interface: the version is pinned in
pyproject.toml and tests/embedded/test_clickhouse_server.py proves this route.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from services.stack.clickhouse_auth import OnceAuthenticator, users_xml

# The blocking query: one row per second, filtered out, so it costs nothing and returns nothing.
_MARKER = "trilha_server_keepalive"
_BLOCKER = (f"SELECT count() AS {_MARKER} FROM system.numbers WHERE sleepEachRow(1) != 0 "
            "SETTINGS max_block_size = 1, max_threads = 1, max_execution_time = 0")
_KILL = f"KILL QUERY WHERE query LIKE '%{_MARKER} FROM%' AND query NOT LIKE 'KILL%' SYNC"
# LocalServer waits ~5 s for open connections when it stops; idle keep-alive ones must close first.
KEEP_ALIVE_S = 2


@dataclass(frozen=True)
class Endpoint:
    """One server's ports on 127.0.0.1."""

    http_port: int
    tcp_port: int


@dataclass(frozen=True)
class ServerSpec:
    """One embedded server: where its data and its generated configuration live, its ports, the
    cluster it belongs to (`shards` in order, empty for one node), and the clients' user."""

    data_dir: Path
    run_dir: Path
    me: Endpoint
    user: str
    password: str
    cluster: str = ""
    shards: tuple[Endpoint, ...] = ()


def config_xml(spec: ServerSpec, auth: str) -> str:
    """127.0.0.1 only, its ports, `auth` (users and the authenticator), and for a cluster on one machine
    the same `<remote_servers>` on every server: shards by TCP port, reached as the clients' user."""
    remote = ""
    if spec.cluster and spec.shards:
        login = f"<user>{escape(spec.user)}</user><password>{escape(spec.password)}</password>"
        replicas = "".join(f"<shard><replica><host>127.0.0.1</host><port>{s.tcp_port}</port>{login}</replica></shard>"
                           for s in spec.shards)
        remote = f"<remote_servers><{spec.cluster}>{replicas}</{spec.cluster}></remote_servers>"
    return (f"<clickhouse><listen_host>127.0.0.1</listen_host><http_port>{spec.me.http_port}</http_port>"
            f"<tcp_port>{spec.me.tcp_port}</tcp_port><keep_alive_timeout>{KEEP_ALIVE_S}</keep_alive_timeout>"
            f"{auth}{remote}</clickhouse>\n")


def serve(spec: ServerSpec) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    # Imported before the chdir: importing chdb opens an engine in the current directory, which
    # our users.xml (default locked out) would refuse. Loading it costs ~1 s and 300 MB.
    import chdb._chdb as engine

    authenticator = OnceAuthenticator()
    _write_private(spec.run_dir, {"config.xml": config_xml(spec, authenticator.config()),
                                  "users.xml": users_xml(spec.user, spec.password)})
    os.chdir(spec.run_dir)
    outcome: dict[str, BaseException] = {}
    done = threading.Event()

    def run() -> None:
        try:
            engine.query(f"SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; {_BLOCKER}", "TabSeparated",
                         path=str(spec.data_dir))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc
        done.set()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=run, name="clickhouse", daemon=True).start()
    while not (stop.wait(0.2) or done.is_set()):
        pass
    if not done.is_set():
        _end_blocking_query(spec, done)
    done.wait()
    if "error" in outcome or not stop.is_set():
        # The blocking query never ends by itself: LocalServer printed why it stopped (a locked
        # data directory, a port taken meanwhile) on stderr; chdb does not hand it to us.
        reason = str(outcome.get("error", "")).strip().splitlines()[:1] or ["see the lines above"]
        print(f"clickhouse: the server stopped on its own ({reason[0]})", file=sys.stderr, flush=True)
        return 1
    # LocalServer has printed "Query was cancelled" for the query that kept it up: that is this stop.
    print("clickhouse: stopped cleanly", file=sys.stderr, flush=True)
    return 0


def _write_private(folder: Path, files: dict[str, str]) -> None:
    """The configuration holds the cluster's password: readable by this user only."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name, text in files.items():
        path = folder / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(text)


def _end_blocking_query(spec: ServerSpec, done: threading.Event) -> None:
    """Ask our own server to kill the blocking query; retried until the call returns (the server
    may still be starting, or the query not have begun yet)."""
    url = f"http://127.0.0.1:{spec.me.http_port}/?" + urllib.parse.urlencode({"query": _KILL})
    login = {"X-ClickHouse-User": spec.user, "X-ClickHouse-Key": spec.password}
    while not done.is_set():
        try:
            request = urllib.request.Request(url, method="POST", headers=login)
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except OSError:
            pass
        done.wait(1.0)
