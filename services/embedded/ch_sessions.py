"""HTTP sessions (`session_id`): a chDB connection pinned to one client across requests.

A session keeps what ClickHouse keeps in one: temporary tables, `SET`/`USE` run as statements.
URL settings, though, belong to one request only, so the session remembers which it applied and
the next request changes just the difference (resetting to DEFAULT what it no longer sends). The
steady state of clickhouse-connect's sync client, which sends the same settings every time, costs
nothing; an `insert_deduplication_token` sent once is reset before the next request runs. A
session serves one request at a time (SESSION_IS_LOCKED otherwise) and is closed after
`session_timeout` seconds without use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.embedded.ch_errors import SESSION_IS_LOCKED, ChError
from services.embedded.ch_settings import RequestOptions, quote_identifier, session_missing, set_statement


@dataclass
class Session:
    session_id: str
    timeout: float
    conn: Any = None
    busy: bool = False
    last_used: float = field(default_factory=time.monotonic)
    applied: dict[str, str] = field(default_factory=dict)  # URL settings in force on the connection
    database: str | None = None

    def prepare(self, options: RequestOptions, connect: Callable[[], Any]) -> None:
        """Open the connection if needed and bring it to this request's database and settings.

        Blocks on chDB: runs in a worker thread, while the session is claimed.
        """
        if self.conn is None:
            self.conn = connect()
        if options.database and options.database != self.database:
            self.conn.query(f"USE {quote_identifier(options.database)}", "TabSeparated")
            self.database = options.database
        wanted = options.settings
        changes: dict[str, str | None] = {k: v for k, v in wanted.items() if self.applied.get(k) != v}
        changes.update({k: None for k in self.applied if k not in options.settings})
        if not changes:
            return
        try:
            self.conn.query(set_statement(changes), "TabSeparated")
        except BaseException:
            self._reset(changes)
            raise
        self.applied = dict(options.settings)

    def _reset(self, names: dict[str, str | None]) -> None:
        """After a failed SET its effect is unknown: put each setting back to its default."""
        for name in names:
            try:
                self.conn.query(set_statement({name: None}), "TabSeparated")
            except Exception:  # an unknown setting has nothing to reset
                pass
            self.applied.pop(name, None)


class Sessions:
    """The live sessions; only touched from the event loop thread."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def claim(self, options: RequestOptions) -> Session:
        """The request's session, created if needed and marked busy; raises ChError if in use."""
        session_id = options.session_id or ""
        session = self._sessions.get(session_id)
        if session is None:
            if options.session_check:
                raise session_missing(session_id)
            session = self._sessions[session_id] = Session(session_id, options.session_timeout)
        if session.busy:
            raise ChError.make(SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client")
        session.busy = True
        session.timeout = options.session_timeout
        return session

    def release(self, session: Session) -> None:
        session.busy = False
        session.last_used = time.monotonic()

    def expired(self, now: float) -> list[Session]:
        """Remove and return the idle sessions whose timeout has passed."""
        gone = [s for s in self._sessions.values() if not s.busy and now - s.last_used > s.timeout]
        for session in gone:
            del self._sessions[session.session_id]
        return gone

    def remove_all(self) -> list[Session]:
        gone, self._sessions = list(self._sessions.values()), {}
        return gone
