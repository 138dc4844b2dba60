"""The repo_meta table: small facts about the repository, by key (the scanner's
fingerprints of the bindings and label folders, the last scan's time, the counts
`repo status` shows, the file count per folder the split walk balances on, ...).

Owns every read and write of `repo_meta`."""

from __future__ import annotations

import sqlite3


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM repo_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO repo_meta(key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
