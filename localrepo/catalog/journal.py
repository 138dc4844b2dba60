"""The journal table: the sync engine's outbox, and the scanner's observations.

Owns every read and write of `journal`, its statuses and the prefix of op kinds.

- **Observations**: a scan journals what changed (kinds in `scan/changes.py`: added,
  moved, ...) as `PENDING` rows; a sync that brought the task in line marks them `DONE`.
- **Ops**: an op row (kind `OP_PREFIX` + a plan op kind, such as "op:upload") is
  inserted `IN_FLIGHT` before the op touches anything, and marked `DONE` or `FAILED`
  with its result; one still `IN_FLIGHT` when a run starts was interrupted (a crash, or
  `kill -9`), and is `SUPERSEDED` once the next run has re-derived its work (design
  section 3, "Crashes").
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator

from localrepo.catalog.db import rows_in

PENDING = "pending"  # an observation not synced yet (the column's default)
IN_FLIGHT = "in_flight"  # an op written before its side effect, not finished
DONE = "done"
FAILED = "failed"
SUPERSEDED = "superseded"  # an interrupted op whose work the next run re-derived
# Rows that still wait for a sync (what `repo status` counts as pending): scanner
# observations not yet synced, and ops of an interrupted run. An op that failed
# (reported) or was superseded (the next run re-derived it from state) is history.
OPEN = (PENDING, IN_FLIGHT)
OP_PREFIX = "op:"  # kind of an op row: OP_PREFIX + the plan's op kind

_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN) + ")"  # "('pending', 'in_flight')"
_INSERT = (
    "INSERT INTO journal(created_ns, kind, status, task_id, path, old_path, image_hash,"
    f" detail, attempts) VALUES (?, ?, '{PENDING}', ?, ?, ?, ?, ?, 0)"
)


# -- the scanner's observations -----------------------------------------------------------


def add(
    conn: sqlite3.Connection,
    kind: str,
    *,
    task_id: int | None = None,
    path: str | None = None,
    old_path: str | None = None,
    image_hash: str | None = None,
    detail: dict | None = None,
    now_ns: int | None = None,
) -> None:
    conn.execute(
        _INSERT,
        (
            now_ns or time.time_ns(),
            kind,
            task_id,
            path,
            old_path,
            image_hash,
            json.dumps(detail, sort_keys=True) if detail else None,
        ),
    )


def add_many(
    conn: sqlite3.Connection,
    entries: Iterable[tuple[str, int | None, str | None, str | None, str | None, dict | None]],
    *,
    now_ns: int,
) -> None:
    """Many (kind, task_id, path, old_path, image_hash, detail) entries in one statement."""
    conn.executemany(
        _INSERT,
        [
            (now_ns, k, t, p, o, h, json.dumps(d, sort_keys=True) if d else None)
            for k, t, p, o, h, d in entries
        ],
    )


def next_id(conn: sqlite3.Connection) -> int:
    """The id the next row will get (asked inside a write transaction, it stays so)."""
    return conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM journal").fetchone()[0]


_ADD_STREAMED = (
    "INSERT OR IGNORE INTO journal(id, created_ns, kind, status, task_id, path,"
    " old_path, image_hash, detail, attempts)"
    f" VALUES (?, ?, 'added', '{PENDING}', ?, ?, NULL, ?, NULL, 0)"
)


def add_streamed(
    conn: sqlite3.Connection, rows: list[tuple[int, int, int | None, str, str]]
) -> int:
    """A first scan's additions (kind "added", scan/changes.ADDED), journalled as their
    results arrive: (id, created_ns, task_id, path, image hash) rows with ids chosen by
    the caller; a row whose id is taken already is skipped. Returns the rows written."""
    return conn.executemany(_ADD_STREAMED, rows).rowcount


def add_valid_files(
    conn: sqlite3.Connection, now_ns: int, task_of: Callable[[str], int | None]
) -> tuple[int, int]:
    """An addition (kind "added") for every file that is a valid image, in path order,
    in one statement (a large first scan's journal, scan/firstscan.py); `task_of(path)`
    names each one's task. Returns (the first id, how many were written)."""
    first = next_id(conn)
    conn.create_function("localrepo_task_of", 1, task_of, deterministic=True)
    try:
        cur = conn.execute(
            "INSERT INTO journal(created_ns, kind, status, task_id, path, old_path,"
            f" image_hash, detail, attempts) SELECT ?, 'added', '{PENDING}',"
            " localrepo_task_of(f.path), f.path, NULL, i.hash, NULL, 0"
            " FROM file f JOIN image i ON i.id = f.image_id"
            " WHERE f.reason IS NULL ORDER BY f.path",
            (now_ns,),
        )
    finally:
        conn.create_function("localrepo_task_of", 1, None)
    return first, cur.rowcount


def additions_from(
    conn: sqlite3.Connection, first_id: int, count: int
) -> list[tuple[int | None, str, str]]:
    """(task id, path, image hash) of the `count` additions a large first scan journalled
    from `first_id` on (scan/firstscan.py), in id order."""
    return conn.execute(
        "SELECT task_id, path, image_hash FROM journal WHERE id >= ? AND kind = 'added'"
        " ORDER BY id LIMIT ?",
        (first_id, count),
    ).fetchall()


def take_back(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """Delete the rows with ids first_id..last_id (a first scan's streamed additions)."""
    conn.execute("DELETE FROM journal WHERE id BETWEEN ? AND ?", (first_id, last_id))


def last_paths(conn: sqlite3.Connection, hashes: list[str]) -> dict[str, str]:
    """{hash: the last path the journal saw the image at} (a deleted file's old path)."""
    out: dict[str, str] = {}
    for digest, path in rows_in(
        conn,
        "SELECT image_hash, COALESCE(old_path, path) FROM journal"
        " WHERE image_hash IN ({marks}) AND COALESCE(old_path, path) IS NOT NULL"
        f" AND kind NOT LIKE '{OP_PREFIX}%' ORDER BY id",
        hashes,
    ):
        out[digest] = path
    return out


# -- the outbox ---------------------------------------------------------------------------


def add_op(
    conn: sqlite3.Connection,
    now_ns: int,
    op_kind: str,
    task_id: int,
    key: str | None,
    detail: dict,
    path: str | None = None,
) -> int:
    """Journal a plan op (`op_kind`, such as "upload") IN_FLIGHT, before its side
    effect, with a file of the image (`path`, for `repo log`); returns its row id."""
    cur = conn.execute(
        "INSERT INTO journal(created_ns, kind, status, task_id, path, image_hash, detail,"
        f" attempts) VALUES (?, ?, '{IN_FLIGHT}', ?, ?, ?, ?, 1)",
        (
            now_ns,
            OP_PREFIX + op_kind,
            task_id,
            path,
            key,
            json.dumps(detail, sort_keys=True) if detail else None,
        ),
    )
    return int(cur.lastrowid or 0)


def finish_ops(
    conn: sqlite3.Connection, ids: list[int], error: str | None, clock: Callable[[], int]
) -> None:
    """Mark ops DONE, or FAILED with `error`; each row's finished_ns is a `clock()`."""
    conn.executemany(
        "UPDATE journal SET status = ?, error = ?, finished_ns = ? WHERE id = ?",
        [(FAILED if error else DONE, error, clock(), i) for i in ids],
    )


def interrupted_ops(conn: sqlite3.Connection, kind: str) -> list[tuple[int, int, str, dict]]:
    """[(row id, task id, image hash, detail)] of the ops of `kind` (a plan op kind,
    such as "set_local") still in flight."""
    return [
        (row_id, task_id, digest, json.loads(detail) if detail else {})
        for row_id, task_id, digest, detail in conn.execute(
            "SELECT id, task_id, image_hash, detail FROM journal WHERE status = ? AND kind = ?"
            " AND image_hash IS NOT NULL AND task_id IS NOT NULL ORDER BY id",
            (IN_FLIGHT, OP_PREFIX + kind),
        )
    ]


def supersede(conn: sqlite3.Connection, ids: list[int], now_ns: int) -> None:
    conn.executemany(
        "UPDATE journal SET status = ?, finished_ns = ? WHERE id = ?",
        [(SUPERSEDED, now_ns, i) for i in ids],
    )


def observations_synced(conn: sqlite3.Connection, task_id: int, now_ns: int) -> None:
    """The task's pending observations are on both sides now: DONE."""
    conn.execute(
        f"UPDATE journal SET status = '{DONE}', finished_ns = ? WHERE task_id = ?"
        f" AND status = '{PENDING}' AND kind NOT LIKE '{OP_PREFIX}%'",
        (now_ns, task_id),
    )


def supersede_in_flight(conn: sqlite3.Connection, task_id: int, now_ns: int) -> None:
    """Every op of the task still in flight (deferred uploads, say) is SUPERSEDED: a run
    that synced the task has re-derived their work."""
    conn.execute(
        f"UPDATE journal SET status = '{SUPERSEDED}', finished_ns = ? WHERE"
        f" task_id = ? AND status = '{IN_FLIGHT}' AND kind LIKE '{OP_PREFIX}%'",
        (now_ns, task_id),
    )


def close_task(conn: sqlite3.Connection, task_id: int, now_ns: int) -> None:
    """`repo task remove --force`: the task's OPEN rows will never be synced; SUPERSEDED,
    so that nothing counts them as pending once the task is gone."""
    conn.execute(
        "UPDATE journal SET status = ?, finished_ns = ? WHERE task_id = ? AND status IN "
        + _OPEN_SQL,
        (SUPERSEDED, now_ns, task_id),
    )


# -- reading it (repo status, repo log, the daemon) ---------------------------------------


def open_counts(conn: sqlite3.Connection) -> list[tuple[int | None, str, int]]:
    """[(task id, kind, how many)] of the OPEN rows."""
    return conn.execute(
        "SELECT task_id, kind, COUNT(*) FROM journal WHERE status IN "
        + _OPEN_SQL
        + " GROUP BY task_id, kind"
    ).fetchall()


def open_counts_of_task(conn: sqlite3.Connection, task_id: int) -> dict[str, int]:
    """{kind: how many} of the task's OPEN rows."""
    return {
        kind: n
        for kind, n in conn.execute(
            "SELECT kind, COUNT(*) FROM journal WHERE task_id = ? AND status IN "
            + _OPEN_SQL
            + " GROUP BY kind",
            (task_id,),
        )
    }


def open_count(conn: sqlite3.Connection) -> int:
    """How many rows are OPEN."""
    return conn.execute("SELECT COUNT(*) FROM journal WHERE status IN " + _OPEN_SQL).fetchone()[0]


def open_entries(
    conn: sqlite3.Connection,
) -> list[tuple[str, int | None, str | None, str | None, str | None, str | None]]:
    """[(kind, task id, path, old path, image hash, detail JSON)] of the OPEN rows,
    oldest first."""
    return conn.execute(
        "SELECT kind, task_id, path, old_path, image_hash, detail FROM journal"
        " WHERE status IN " + _OPEN_SQL + " ORDER BY id"
    ).fetchall()


def open_moves(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """[(image hash, path, old path)] of the OPEN moves ("moved", scan/changes.MOVED)
    that name their image and both paths, oldest first."""
    return conn.execute(
        "SELECT image_hash, path, old_path FROM journal WHERE status IN "
        + _OPEN_SQL
        + " AND kind = 'moved' AND image_hash != '' AND path != '' AND old_path != ''"
        " ORDER BY id"
    ).fetchall()


def open_additions(conn: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    """(image hash, path) of the OPEN additions ("added", scan/changes.ADDED) that
    name both, oldest first, a row at a time (a first scan of a million files journals
    a million: no join, no grouping, which would cost seconds there)."""
    return conn.execute(
        "SELECT image_hash, path FROM journal WHERE status IN "
        + _OPEN_SQL
        + " AND kind = 'added' AND image_hash != '' AND path != '' ORDER BY id"
    )


def entries(conn: sqlite3.Connection, *, limit: int | None, pending_only: bool) -> list[tuple]:
    """`repo log`: [(id, created_ns, kind, status, task name, path, old path, image hash,
    detail JSON, error)], newest first; only the OPEN ones with `pending_only`."""
    sql = (
        "SELECT j.id, j.created_ns, j.kind, j.status, t.name, j.path, j.old_path, j.image_hash,"
        " j.detail, j.error FROM journal j LEFT JOIN task t ON t.id = j.task_id"
    )
    if pending_only:
        sql += " WHERE j.status IN " + _OPEN_SQL
    sql += " ORDER BY j.id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql).fetchall()
