"""The conflict table: three-way conflicts the sync engine recorded, and how each was
settled (by a policy, by `repo resolve`, or by later edits that converged).

A row is open while `resolved_ns` is NULL. An open row with a `resolution` is decided:
`repo resolve` chose a side (`decide`), offline; the next sync that can carry it out
settles it (`decisions` tells the engine which side each image takes). A run that
finds it open again (a `pull` cannot send a local decision) keeps the decision.

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
            conn.execute(  # an open one keeps its decision, if it has one
                "UPDATE conflict SET base = ?, local = ?, remote = ?, path = ?,"
                " resolved_ns = ?, resolution = COALESCE(?, resolution) WHERE id = ?",
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
        if (key, field_name) not in current:  # settled: by its decision, or by later edits
            conn.execute(
                "UPDATE conflict SET resolved_ns = ?, resolution = COALESCE(resolution, ?)"
                " WHERE id = ?",
                (now_ns, CONVERGED, row_id),
            )


def open_by_task(conn: sqlite3.Connection) -> list[tuple[int, int, str | None, str]]:
    """[(conflict id, task id, path, field)] of the open conflicts (`repo status`)."""
    return conn.execute(
        "SELECT id, task_id, path, field FROM conflict WHERE resolved_ns IS NULL ORDER BY id"
    ).fetchall()


def open_details(conn: sqlite3.Connection) -> list[tuple]:
    """[(conflict id, task name, path, field, base JSON, local JSON, remote JSON, image
    hash)] of the open conflicts (`repo conflicts`, `resolve`)."""
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


def decide(conn: sqlite3.Connection, conflict_ids: Iterable[int], side: str) -> None:
    """Record `repo resolve`'s decision: these open conflicts take `side` (local or
    remote) at the next sync."""
    conn.executemany(
        "UPDATE conflict SET resolution = ? WHERE id = ? AND resolved_ns IS NULL",
        [(side, i) for i in conflict_ids],
    )


def decided(conn: sqlite3.Connection) -> dict[int, str]:
    """{conflict id: side} of the open conflicts `repo resolve` decided."""
    return dict(
        conn.execute(
            "SELECT id, resolution FROM conflict"
            " WHERE resolved_ns IS NULL AND resolution IS NOT NULL"
        ).fetchall()
    )


def decisions(conn: sqlite3.Connection, task_id: int) -> dict[str, str]:
    """{image hash: side} of the task's decided conflicts not sent yet."""
    return dict(
        conn.execute(
            "SELECT i.hash, c.resolution FROM conflict c JOIN image i ON i.id = c.image_id"
            " WHERE c.task_id = ? AND c.resolved_ns IS NULL AND c.resolution IS NOT NULL",
            (task_id,),
        ).fetchall()
    )
