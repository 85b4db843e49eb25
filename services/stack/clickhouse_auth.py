"""A user and password for the embedded ClickHouse, although its own in-process session cannot have one.

clickhouse-local's in-process session always authenticates as `default` with an empty password
(chdb-core, LocalConnection.cpp), so `default` must stay; what it must not do is let anyone else
in. So `default` is made an externally authenticated user (`<http_authentication>`) whose
authentication server is `OnceAuthenticator`, in this process: it says yes exactly once, to that
session at start-up, before any listener exists, and no to everything after. Network clients
use the configured user (never `default`) with a password stored as its SHA-256 only
(findings and evidence: the CHAUTH study, summarised in README "The embedded stack").
"""

from __future__ import annotations

import hashlib
import http.server
import secrets
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from services.runtime.settings import ConfigError, Settings

AUTH_SERVER = "trilha_startup_once"
EMBEDDED_USER = "trilha"  # what `trilha up` uses unless TRILHA_CLICKHOUSE_USER names another user
SECRET_FILE = "clickhouse.secret"  # in the data dir: the password `trilha up` made, when none was given


class OnceAuthenticator:
    """HTTP Basic authentication endpoint that answers 200 to its first request on a secret path, 401 after."""

    def __init__(self) -> None:
        self.path = f"/startup-once/{secrets.token_hex(16)}"
        self.granted = False
        lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with lock:
                    ok = self.path == owner.path and not owner.granted
                    owner.granted |= ok
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="once-auth", daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def config(self) -> str:
        """The `<http_authentication_servers>` and `<users_config>` entries of config.xml."""
        return (f"<users_config>users.xml</users_config><http_authentication_servers><{AUTH_SERVER}>"
                f"<uri>{escape(self.uri)}</uri><max_tries>1</max_tries></{AUTH_SERVER}></http_authentication_servers>")


def login(settings: Settings) -> tuple[str, str]:
    """User and password for a client. Unset (default, no password), a process started by hand next
    to `trilha up` on the same data dir (e.g. `trilha tokens`) logs in as `trilha up` made it."""
    kept = Path(settings.data_dir) / SECRET_FILE
    if settings.clickhouse_user == "default" and not settings.clickhouse_password and kept.is_file():
        return EMBEDDED_USER, kept.read_text().strip()
    return settings.clickhouse_user, settings.clickhouse_password


def check_credentials(settings: Settings) -> None:
    """The embedded server needs a user of its own and a password: `default` is its in-process session's."""
    if settings.clickhouse_user == "default" or not settings.clickhouse_user.isidentifier():
        raise ConfigError(f"TRILHA_CLICKHOUSE_USER={settings.clickhouse_user!r}: the embedded ClickHouse needs "
                          "another user name (letters, digits, _), e.g. trilha; `trilha up` picks trilha")
    if not settings.clickhouse_password:
        raise ConfigError("TRILHA_CLICKHOUSE_PASSWORD is empty: the embedded ClickHouse refuses requests without "
                          "a password; `trilha up` makes one per data dir")


def users_xml(user: str, password: str) -> str:
    """`default` for the in-process session only (authenticated once, then never), and `user` for clients."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return (
        # idle_connection_timeout: a shard keeps its peers' pooled native connections open for an hour by
        # default, and LocalServer stops with exit 1 when they outlive its ~5 s wait (as keep-alive does).
        "<clickhouse><profiles><default><idle_connection_timeout>2</idle_connection_timeout></default></profiles>"
        "<quotas><default/></quotas><users>"
        f"<default><http_authentication><server>{AUTH_SERVER}</server><scheme>basic</scheme></http_authentication>"
        "<networks><ip>::1</ip></networks><profile>default</profile><quota>default</quota>"
        # What the in-process session runs, and nothing more (defence in depth).
        "<grants><query>GRANT SYSTEM LISTEN ON *.*</query><query>GRANT SELECT ON system.numbers</query></grants>"
        "</default>"
        f"<{user}><password_sha256_hex>{digest}</password_sha256_hex><networks><ip>::1</ip></networks>"
        f"<profile>default</profile><quota>default</quota></{user}>"
        "</users></clickhouse>\n")
