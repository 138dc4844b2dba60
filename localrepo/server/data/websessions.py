"""The web interface's sessions (table ``web_sessions``): created at sign-in, looked up
on every page, deleted at sign-out or once expired. Keys are the sha256 of the cookie's
value (server/web/session.py makes both); times are tables.now_iso() strings, which
sort as text."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from .db import Database
from .tables import WebSession


@dataclass(frozen=True)
class SessionUser:
    user_id: str
    username: str
    csrf_token: str


_LOOKUP_SQL = text(
    "SELECT s.user_id, u.username, s.csrf_token FROM web_sessions s "
    "JOIN users u ON u.id = s.user_id WHERE s.id_hash = :h AND s.expires > :now"
)
_DELETE_SQL = text("DELETE FROM web_sessions WHERE id_hash = :h")
_PURGE_SQL = text("DELETE FROM web_sessions WHERE expires <= :now")


def start(
    db: Database,
    *,
    id_hash: str,
    user_id: str,
    csrf_token: str,
    expires: str,
    now: str,
    replaces: str | None,
) -> None:
    """A new session; ``replaces`` (the hash of the cookie the browser came with, if
    any) and every expired session are deleted in the same transaction."""
    with db.write() as session:
        session.execute(_PURGE_SQL, {"now": now})
        if replaces:
            session.execute(_DELETE_SQL, {"h": replaces})
        session.add(
            WebSession(id_hash=id_hash, user_id=user_id, csrf_token=csrf_token, expires=expires)
        )


def lookup(db: Database, id_hash: str, now: str) -> SessionUser | None:
    """The signed-in user of a live session; None when unknown or expired."""
    with db.read() as session:
        row = session.connection().execute(_LOOKUP_SQL, {"h": id_hash, "now": now}).first()
    return None if row is None else SessionUser(user_id=row[0], username=row[1], csrf_token=row[2])


def end(db: Database, id_hash: str) -> None:
    with db.write() as session:
        session.execute(_DELETE_SQL, {"h": id_hash})
