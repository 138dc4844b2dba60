"""The conflict table: three-way conflicts the sync engine recorded, and how each was
settled (by a policy, by `repo resolve`, or by later edits that converged).

Owns every read and write of `conflict`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping

CONVERGED = "converged"  # the resolution of a conflict that later edits settled

# A conflict of one sync run's plan: (image key, field, path, base, local, remote,
# resolution), the three sides as (label name, value) pairs; resolution None: open.
Found = tuple[
    str,
    str,
    str | None,
    Iterable[tuple[str, float | None]],
    Iterable[tuple[str, float | None]],
    Iterable[tuple[str, float | None]],
    str | None,
]


def record(
    conn: sqlite3.Connection,
    task_id: int,
    image_ids: Mapping[str, int],
    found: Iterable[Found],
    now_ns: int,
) -> None:
    """Record a sync run's conflicts for the task: an open conflict of the same image and
    field is updated (and settled, when the run settled it), a new one added; an open
    one the run no longer found was settled by later edits ('converged').
    `image_ids`: {hash: image id}."""
    open_rows = {
        (r[1], r[2]): r[0]
        for r in conn.execute(
            "SELECT c.id, i.hash, c.field FROM conflict c JOIN image i ON i.id = c.image_id"
            " WHERE c.task_id = ? AND c.resolved_ns IS NULL",
            (task_id,),
        )
    }
    current = set()
    for key, field, path, base, local, remote, resolution in found:
        image_id = image_ids.get(key)
        values = (
            json.dumps(dict(base)),
            json.dumps(dict(local)),
            json.dumps(dict(remote)),
        )
        existing = open_rows.get((key, field))
        if resolution is None:
            current.add((key, field))
        if existing is not None:  # the open conflict, updated (and maybe settled)
            conn.execute(
                "UPDATE conflict SET base = ?, local = ?, remote = ?, path = ?,"
                " resolved_ns = ?, resolution = ? WHERE id = ?",
                (
                    *values,
                    path,
                    None if resolution is None else now_ns,
                    resolution,
                    existing,
                ),
            )
            open_rows.pop((key, field))
            continue
        conn.execute(
            "INSERT INTO conflict(task_id, image_id, path, field, base, local, remote,"
            " created_ns, resolved_ns, resolution) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                task_id,
                image_id,
                path,
                field,
                *values,
                now_ns,
                None if resolution is None else now_ns,
                resolution,
            ),
        )
    for (key, field_name), row_id in open_rows.items():
        if (key, field_name) not in current:  # settled by later edits
            conn.execute(
                f"UPDATE conflict SET resolved_ns = ?, resolution = '{CONVERGED}' WHERE id = ?",
                (now_ns, row_id),
            )


def open_conflicts(conn: sqlite3.Connection) -> list[tuple[int, str | None, str | None]]:
    """[(conflict id, path, image hash)] of the conflicts not settled yet."""
    return conn.execute(
        "SELECT c.id, c.path, i.hash FROM conflict c LEFT JOIN image i ON i.id = c.image_id"
        " WHERE c.resolved_ns IS NULL ORDER BY c.id"
    ).fetchall()


def open_by_task(conn: sqlite3.Connection) -> list[tuple[int, int, str | None, str]]:
    """[(conflict id, task id, path, field)] of the open conflicts (`repo status`)."""
    return conn.execute(
        "SELECT id, task_id, path, field FROM conflict WHERE resolved_ns IS NULL ORDER BY id"
    ).fetchall()


def open_details(conn: sqlite3.Connection) -> list[tuple]:
    """[(conflict id, task name, path, field, base JSON, local JSON, remote JSON, image
    hash)] of the open conflicts (`repo conflicts`)."""
    return conn.execute(
        "SELECT c.id, t.name, c.path, c.field, c.base, c.local, c.remote, i.hash"
        " FROM conflict c JOIN task t ON t.id = c.task_id LEFT JOIN image i"
        " ON i.id = c.image_id WHERE c.resolved_ns IS NULL ORDER BY c.id"
    ).fetchall()


def open_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM conflict WHERE resolved_ns IS NULL").fetchone()[0]


def open_count_of_task(conn: sqlite3.Connection, task_id: int) -> int:
    (n,) = conn.execute(
        "SELECT COUNT(*) FROM conflict WHERE task_id = ? AND resolved_ns IS NULL", (task_id,)
    ).fetchone()
    return int(n)


def image_at(conn: sqlite3.Connection, path: str) -> str | None:
    """The hash of the valid image file at `path`, if the catalog has one."""
    row = conn.execute(
        "SELECT i.hash FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.path = ? AND f.reason IS NULL",
        (path,),
    ).fetchone()
    return row[0] if row else None
