"""The conflict table as `repo conflicts` and `repo resolve` read it."""

from __future__ import annotations

import sqlite3


def open_conflicts(conn: sqlite3.Connection) -> list[tuple[int, str | None, str | None]]:
    """[(conflict id, path, image hash)] of the conflicts not settled yet."""
    return conn.execute(
        "SELECT c.id, c.path, i.hash FROM conflict c LEFT JOIN image i ON i.id = c.image_id"
        " WHERE c.resolved_ns IS NULL ORDER BY c.id"
    ).fetchall()


def image_at(conn: sqlite3.Connection, path: str) -> str | None:
    """The hash of the valid image file at `path`, if the catalog has one."""
    row = conn.execute(
        "SELECT i.hash FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.path = ? AND f.reason IS NULL",
        (path,),
    ).fetchone()
    return row[0] if row else None
