"""Token revocations told to every process on a PostgreSQL database (LISTEN/NOTIFY).

Each API process trusts a token it has checked for ``--auth-cache-seconds``
(server/context.py). A revocation, wherever it happens (the web page, ``token revoke``,
another host), sends ``NOTIFY`` in its own transaction (``announce``); PostgreSQL hands
it to every listening connection as the transaction commits, i.e. before the
revocation's answer leaves. ``RevocationListener.changed`` looks at its connection
without waiting (one ``select`` with no timeout, on the event loop) before a cached
token is trusted: a request that comes after the revocation's answer finds the
notification there, and the cache is forgotten. A listener that lost its connection
answers True until it is back (``reconnect``): no token is trusted from the cache
meanwhile, as notifications may have been missed. A thread reads the connection every
``IDLE_SECONDS`` too, so that an idle process does not leave notifications unread
(PostgreSQL keeps them queued for it). SQLite has no NOTIFY and one
process: there, the process that revokes forgets the token itself.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from .db import Database

CHANNEL = "localrepo_token_revoked"
RECONNECT_SECONDS = 5.0
IDLE_SECONDS = 30.0


def announce(db: Database, session: Session) -> None:
    """In a revocation's transaction: tell every process once it commits."""
    if db.is_postgres:
        session.execute(text(f"NOTIFY {CHANNEL}"))


class RevocationListener:
    def __init__(self, db: Database):
        self.db = db
        self._conn: Any = None
        self._lock = threading.Lock()
        self._last_try = 0.0
        self._seen = False  # notifications read by the idle thread, not yet told
        self._closed = threading.Event()
        self.reconnect()
        threading.Thread(target=self._read_when_idle, name="revocations", daemon=True).start()

    def _read_when_idle(self) -> None:
        while not self._closed.wait(IDLE_SECONDS):
            with self._lock:
                self._seen = self._read() or self._seen

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def reconnect(self) -> None:
        """Listen again if the connection is lost (at most every RECONNECT_SECONDS; it
        waits for the database, so never on the event loop)."""
        if self._conn is not None or time.monotonic() - self._last_try < RECONNECT_SECONDS:
            return
        self._last_try = time.monotonic()
        try:
            raw = self.db.autocommit_engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()  # this process's own, never back in the pool
            assert conn is not None
            conn.set_autocommit(True)
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception:  # the database is away: try again later
            return
        with self._lock:
            self._conn = conn

    def changed(self) -> bool:
        """Whether a token may have been revoked since the last call: a notification
        came, or the connection is lost. Never waits."""
        with self._lock:
            seen, self._seen = self._seen, False
            return self._read() or seen

    def _read(self) -> bool:
        """Read what came on the connection (holding the lock): True if anything did,
        or the connection is lost."""
        conn = self._conn
        if conn is None:
            return True
        try:
            if not select.select([conn.fileno()], [], [], 0)[0]:
                return False
            pgconn = conn.pgconn
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                pass
            if conn.closed or pgconn.status != 0:  # CONNECTION_OK
                raise ConnectionError
        except Exception:
            with contextlib.suppress(Exception):
                conn.close()
            self._conn = None
        return True

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
