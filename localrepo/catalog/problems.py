"""The scan_problem table: the layout problems the last scan found (refused folder
names, case twins, sidecar errors, missing values), which `repo status` shows and the
sync engine reads to hold back the images of refused folders.

Owns every read and write of `scan_problem`."""

from __future__ import annotations

import sqlite3

FOLDER_NAME_PROBLEM = "folder_name"  # scan_problem.kind of a folder the naming rule refuses

ProblemRow = tuple[int | None, str | None, str, str]  # (task id, path, kind, message)


def replace_problems(conn: sqlite3.Connection, rows: list[ProblemRow]) -> None:
    """The last scan's problems are exactly these rows."""
    conn.execute("DELETE FROM scan_problem")
    conn.executemany(
        "INSERT INTO scan_problem(task_id, path, kind, message) VALUES (?,?,?,?)", rows
    )


def any_besides(conn: sqlite3.Connection, kind: str) -> bool:
    """Whether the last scan found a problem of another kind than `kind`."""
    row = conn.execute("SELECT 1 FROM scan_problem WHERE kind != ? LIMIT 1", (kind,)).fetchone()
    return row is not None


def all_problems(conn: sqlite3.Connection) -> list[ProblemRow]:
    """Every problem of the last scan, in the order it found them."""
    return conn.execute(
        "SELECT task_id, path, kind, message FROM scan_problem ORDER BY id"
    ).fetchall()


def refused_folders(conn: sqlite3.Connection, task_id: int) -> dict[str, str]:
    """{folder: the scanner's message} of the task's first-level folders whose names the
    naming rule refused (at the last scan)."""
    return dict(
        conn.execute(
            "SELECT path, message FROM scan_problem WHERE kind = ? AND task_id = ?"
            " AND path IS NOT NULL ORDER BY path",
            (FOLDER_NAME_PROBLEM, task_id),
        )
    )
