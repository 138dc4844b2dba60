"""Which images' SYNCED and LOCAL labels may differ, per watched task (tables
`label_watch` and `label_dirty`, revision 0009), so that `repo status` compares those
images, not every image: a full comparison costs about a second at a million images
(docs/benchmarks.md), whatever changed.

The invariant: for a watched task, every image whose labels differ between the two
states is in `label_dirty`. A watch begins with a full comparison, made inside a write
transaction so that no write comes between it and the rows it records; from then on,
triggers on `image_label` add every image whose SYNCED or LOCAL rows are written, by whatever
code (a cascade fires them too). Owns every read and write of both tables.

All of it is bookkeeping: no write here moves the write epoch (catalog/db.py), and each
is given up at once, not waited for, when another process holds the write lock or the
catalog is read-only; status then compares in full, as without a watch."""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator
from contextlib import contextmanager

from localrepo.catalog.db import BUSY_TIMEOUT_MS, transaction
from localrepo.catalog.labels import differ_args, differing_image_ids
from localrepo.catalog.sides import LOCAL, SYNCED

# Past this many dirty images (a sync that wrote every image's labels, say), comparing
# them is slower than comparing every image and beginning the watch again.
FULL_AT = 20_000


def differing_ids(conn: sqlite3.Connection, task_id: int) -> array[int]:
    """The ids of the task's images whose SYNCED and LOCAL labels differ (catalog/
    labels.py `differing_image_ids`), from its watch when it has one (and the images
    that agree again are let go); else, or when the watch holds more than FULL_AT
    images, in full, and the watch begins (again). Sorted; an array: a first status of
    a million new images holds a million ids (8 bytes each, not a Python int each)."""
    if _watched(conn, task_id) and _held(conn, task_id) <= FULL_AT:
        ids = _differing_ids(conn, task_id, only_dirty=True)
        with _no_wait(conn), transaction(conn, counts=False):
            _keep_only(conn, task_id, ids)
        return ids
    with _no_wait(conn), transaction(conn, counts=False):
        # Compared and recorded in SQL, then read back sorted: at a million new images,
        # a million rows through Python and back cost seconds.
        conn.execute("DELETE FROM label_dirty WHERE task_id = ?", (task_id,))
        conn.execute(
            "INSERT INTO label_dirty (task_id, image_id) SELECT ?, image_id FROM ("
            + differing_image_ids(False)
            + ")",
            (task_id, *differ_args(task_id, SYNCED, LOCAL, False)),
        )
        conn.execute("INSERT OR IGNORE INTO label_watch (task_id) VALUES (?)", (task_id,))
        return array(
            "q",
            (
                r[0]
                for r in conn.execute(
                    "SELECT image_id FROM label_dirty WHERE task_id = ? ORDER BY image_id",
                    (task_id,),
                )
            ),
        )
    return _differing_ids(conn, task_id, only_dirty=False)


def _watched(conn: sqlite3.Connection, task_id: int) -> bool:
    return bool(conn.execute("SELECT 1 FROM label_watch WHERE task_id = ?", (task_id,)).fetchone())


def _held(conn: sqlite3.Connection, task_id: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM label_dirty WHERE task_id = ?", (task_id,))
    return int(row.fetchone()[0])


def _differing_ids(conn: sqlite3.Connection, task_id: int, *, only_dirty: bool) -> array[int]:
    rows = conn.execute(
        differing_image_ids(only_dirty), differ_args(task_id, SYNCED, LOCAL, only_dirty)
    )
    return array("q", sorted(r[0] for r in rows))


def _keep_only(conn: sqlite3.Connection, task_id: int, ids: array[int]) -> None:
    """The task's dirty images are `ids` (those that differ now, found among them): the
    others, which agree again (after a sync, say), are let go. As many means the same."""
    if _held(conn, task_id) == len(ids):
        return
    conn.execute("DELETE FROM label_dirty WHERE task_id = ?", (task_id,))
    conn.executemany(
        "INSERT INTO label_dirty (task_id, image_id) VALUES (?, ?)",
        [(task_id, i) for i in ids],  # at most FULL_AT
    )


@contextmanager
def _no_wait(conn: sqlite3.Connection) -> Iterator[None]:
    """Give up a write at once (the block is left) when the lock is taken or the
    catalog read-only."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    except sqlite3.OperationalError:
        pass
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
