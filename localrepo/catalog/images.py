"""The image table: one row per content (its xxh3_128 hash), with the remote id it has
on the server and whether this repository uploaded it (`created_here`).

Owns every read and write of `image`. Image rows are never deleted."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from localrepo.catalog.db import rows_in


def image_ids_by_hash(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT hash, id FROM image"))


def ids_of(conn: sqlite3.Connection, hashes: Collection[str]) -> dict[str, int]:
    """{hash: id} of these hashes' images (those the catalog has)."""
    return dict(rows_in(conn, "SELECT hash, id FROM image WHERE hash IN ({marks})", sorted(hashes)))


def max_id(conn: sqlite3.Connection) -> int:
    """The highest image id (0 for none): the scanner hands out the next ones itself."""
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM image").fetchone()[0]


def insert_new(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """The scanner's new images: (id, hash, size, width, height, format) rows, with the
    ids it handed out (it holds the write lock)."""
    conn.executemany(
        "INSERT INTO image(id, hash, size, width, height, format, created_here)"
        " VALUES (?,?,?,?,?,?,0)",
        rows,
    )


def remote_ids(conn: sqlite3.Connection) -> dict[str, str]:
    """{hash: remote id} of the images the server has (as last recorded)."""
    return dict(conn.execute("SELECT hash, remote_id FROM image WHERE remote_id IS NOT NULL"))


def hashes_by_remote_id(conn: sqlite3.Connection) -> dict[str, str]:
    """{remote id: hash} of the images the server has (as last recorded)."""
    return dict(conn.execute("SELECT remote_id, hash FROM image WHERE remote_id IS NOT NULL"))


def all_remote_ids(conn: sqlite3.Connection) -> dict[str, str | None]:
    """{hash: remote id or None} of every image."""
    return dict(conn.execute("SELECT hash, remote_id FROM image"))


def known_remote(conn: sqlite3.Connection) -> set[str]:
    """The hashes of the images that have a remote id."""
    return {h for (h,) in conn.execute("SELECT hash FROM image WHERE remote_id IS NOT NULL")}


def created_here(conn: sqlite3.Connection) -> set[str]:
    """The hashes of the images this repository uploaded."""
    return {h for (h,) in conn.execute("SELECT hash FROM image WHERE created_here = 1")}


def adopt_remote_ids(conn: sqlite3.Connection, moved: list[tuple[str, str]]) -> None:
    """(remote id, hash): the server lists these images under a new id, which this
    repository did not create."""
    conn.executemany("UPDATE image SET remote_id = ?, created_here = 0 WHERE hash = ?", moved)


def set_remote_id(
    conn: sqlite3.Connection, digest: str | None, remote_id: str | None, created_here: bool
) -> None:
    """An upload's remote id (`created_here`: this repository uploaded it)."""
    conn.execute(
        "UPDATE image SET remote_id = ?, created_here = created_here OR ? WHERE hash = ?",
        (remote_id, int(created_here), digest),
    )


def record_synced(
    conn: sqlite3.Connection,
    digest: str,
    size: int | None,
    dims: tuple[int, int, str] | None,
    remote_id: str | None,
    created_here: bool,
    deleted_remote: bool,
) -> int:
    """The image a sync op ended with: its row (added when the op brought it here), its
    remote id (cleared when the op deleted it on the server). Returns its id."""
    conn.execute(
        "INSERT INTO image(hash, size, width, height, format, created_here)"
        " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT(hash) DO NOTHING",
        (
            digest,
            size or 0,
            dims[0] if dims else None,
            dims[1] if dims else None,
            dims[2] if dims else None,
        ),
    )
    image_id = conn.execute("SELECT id FROM image WHERE hash = ?", (digest,)).fetchone()[0]
    if remote_id and not deleted_remote:
        conn.execute(
            "UPDATE image SET remote_id = ?, created_here = created_here OR ? WHERE id = ?",
            (remote_id, int(created_here), image_id),
        )
    elif deleted_remote:
        conn.execute(
            "UPDATE image SET remote_id = NULL, created_here = 0 WHERE id = ?",
            (image_id,),
        )
    return image_id
