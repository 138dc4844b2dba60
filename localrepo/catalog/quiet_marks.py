"""Each task's quiet mark (table `quiet_mark`, revision 0007): where its last fully
clean sync ended, so that the next one, finding nothing changed, skips the listing and
the planner (sync/quiet.py decides; docs/sync.md, "The quiet shortcut"). Owns every
read and write of `quiet_mark`; the write epoch it records is catalog/db.py's.

A mark is written in a transaction that does not move the epoch (it is bookkeeping no
plan reads), together with the feed cursor it names, so the two always agree."""

from __future__ import annotations

import sqlite3

from localrepo.catalog.db import transaction, write_epoch
from localrepo.catalog.remote_listing import feed_state, set_cursor


def mark(conn: sqlite3.Connection, task_id: int) -> tuple[str, str, int, str, str] | None:
    """(source, cursor, epoch, remote labels, options) of the task's mark, or None."""
    row = conn.execute(
        "SELECT source, cursor, epoch, remote_labels, options FROM quiet_mark WHERE task_id = ?",
        (task_id,),
    ).fetchone()
    return (row[0], row[1], int(row[2]), row[3], row[4]) if row else None


def epoch(conn: sqlite3.Connection) -> int:
    return write_epoch(conn)


def stored_feed(conn: sqlite3.Connection, task_id: int) -> tuple[str, str] | None:
    """(source, cursor) of the task's copy of the listing (catalog/remote_listing.py)."""
    return feed_state(conn, task_id)


def record(
    conn: sqlite3.Connection,
    task_id: int,
    *,
    remote_labels: str,
    options: str,
    epoch: int,
    cursor: str | None = None,
) -> bool:
    """Mark the task quiet at write epoch `epoch`, the one the run read before it read
    anything else: the copy's source and cursor (moved to `cursor` first, when given: a
    feed answer with nothing for the task). False (and no mark) when the epoch moved
    since (something was written meanwhile, by this run or another process: the next
    run looks again), or the task has no copy of the listing."""
    with transaction(conn, counts=False):
        if cursor is not None:
            set_cursor(conn, task_id, cursor)
        stored = feed_state(conn, task_id)
        if stored is None or write_epoch(conn) != epoch:
            conn.execute("DELETE FROM quiet_mark WHERE task_id = ?", (task_id,))
            return False
        conn.execute(
            "INSERT OR REPLACE INTO quiet_mark"
            " (task_id, source, cursor, epoch, remote_labels, options)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, stored[0], stored[1], epoch, remote_labels, options),
        )
    return True


def forget(conn: sqlite3.Connection, task_id: int) -> None:
    """No mark: the task's next sync takes the full path."""
    with transaction(conn, counts=False):
        conn.execute("DELETE FROM quiet_mark WHERE task_id = ?", (task_id,))
