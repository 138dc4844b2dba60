"""Each task's copy of the remote listing and its change-feed cursor (tables
`remote_listing` and `remote_feed`; docs/sync.md, "How a sync learns the remote's
changes"). Owns every read and write of both. `source` is what the cursor was taken
for (a JSON text the sync side builds and compares); the copy and its cursor are
written in one transaction, so they always agree."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping


def feed_state(conn: sqlite3.Connection, task_id: int) -> tuple[str, str] | None:
    """(source, cursor) of the task's copy, or None when it has none."""
    row = conn.execute(
        "SELECT source, cursor FROM remote_feed WHERE task_id = ?", (task_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def listing(conn: sqlite3.Connection, task_id: int) -> dict[str, str]:
    """{remote image id: its answer as JSON text} of the task's copy."""
    return dict(
        conn.execute("SELECT image_id, doc FROM remote_listing WHERE task_id = ?", (task_id,))
    )


def replace_listing(
    conn: sqlite3.Connection, task_id: int, source: str, cursor: str, docs: Mapping[str, str]
) -> None:
    """The task's copy is now `docs`, as of `cursor` (after a full listing)."""
    forget(conn, task_id)
    conn.executemany(
        "INSERT INTO remote_listing (task_id, image_id, doc) VALUES (?, ?, ?)",
        [(task_id, image_id, doc) for image_id, doc in docs.items()],
    )
    conn.execute(
        "INSERT INTO remote_feed (task_id, source, cursor) VALUES (?, ?, ?)",
        (task_id, source, cursor),
    )


def apply_changes(
    conn: sqlite3.Connection,
    task_id: int,
    cursor: str,
    changed: Mapping[str, str],
    removed: Iterable[str],
) -> None:
    """The feed's changes into the task's copy, which is then as of `cursor`."""
    conn.executemany(
        "DELETE FROM remote_listing WHERE task_id = ? AND image_id = ?",
        [(task_id, image_id) for image_id in removed],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO remote_listing (task_id, image_id, doc) VALUES (?, ?, ?)",
        [(task_id, image_id, doc) for image_id, doc in changed.items()],
    )
    conn.execute("UPDATE remote_feed SET cursor = ? WHERE task_id = ?", (cursor, task_id))


def set_cursor(conn: sqlite3.Connection, task_id: int, cursor: str) -> None:
    """The copy is as of `cursor` (a feed answer that changed nothing in it)."""
    conn.execute("UPDATE remote_feed SET cursor = ? WHERE task_id = ?", (cursor, task_id))


def forget(conn: sqlite3.Connection, task_id: int) -> None:
    """No copy for the task (the next sync lists in full)."""
    conn.execute("DELETE FROM remote_listing WHERE task_id = ?", (task_id,))
    conn.execute("DELETE FROM remote_feed WHERE task_id = ?", (task_id,))
