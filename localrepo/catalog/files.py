"""The catalog's file rows, as the sync engine reads them: damaged files and the
folders the scanner refused. (The scanner's own stat-cache queries are in store.py.)"""

from __future__ import annotations

import sqlite3

FOLDER_NAME_PROBLEM = "folder_name"  # scan_problem.kind of a folder the naming rule refuses


def like_prefix(prefix: str) -> str:
    """`prefix` escaped for `LIKE ? ESCAPE '\\'`."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def damaged_files(conn: sqlite3.Connection, root: str) -> dict[str, tuple[str, str]]:
    """{path: (hash of the image it held, why it is damaged)} of the damaged files under
    the folder `root` ("" the repository)."""
    prefix = root + "/" if root else ""
    return {
        path: (digest, reason)
        for path, digest, reason in conn.execute(
            "SELECT f.path, i.hash, f.reason FROM file f JOIN image i ON i.id = f.damaged_image_id"
            " WHERE f.damaged_image_id IS NOT NULL AND f.path LIKE ? ESCAPE '\\'",
            (like_prefix(prefix) + "%",),
        )
    }


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


def file_nodes(
    conn: sqlite3.Connection, hashes: list[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """{hash: [(path, dev, inode)]} of the valid files holding these images."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for digest, path, dev, inode in conn.execute(
            "SELECT i.hash, f.path, f.dev, f.inode FROM file f JOIN image i ON i.id = f.image_id"
            f" WHERE f.reason IS NULL AND i.hash IN ({marks}) ORDER BY f.path",
            chunk,
        ):
            out.setdefault(digest, []).append((path, dev, inode))
    return out
