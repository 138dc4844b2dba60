"""The journal as the sync engine's outbox: ops written before their side effects.

An op row is inserted `in_flight` before the op touches anything, and marked `done` or
`failed` with its result; one still `in_flight` when a run starts was interrupted (a
crash, or `kill -9`). (The scanner's observations are other rows of the same table.)
"""

from __future__ import annotations

import json
import sqlite3

IN_FLIGHT = "in_flight"
SUPERSEDED = "superseded"  # an interrupted op whose work the next run re-derived


def interrupted_ops(conn: sqlite3.Connection, kind: str) -> list[tuple[int, int, str, dict]]:
    """[(row id, task id, image hash, detail)] of the ops of `kind` (a plan op kind,
    such as "set_local") still in flight."""
    return [
        (row_id, task_id, digest, json.loads(detail) if detail else {})
        for row_id, task_id, digest, detail in conn.execute(
            "SELECT id, task_id, image_hash, detail FROM journal WHERE status = ? AND kind = ?"
            " AND image_hash IS NOT NULL AND task_id IS NOT NULL ORDER BY id",
            (IN_FLIGHT, "op:" + kind),
        )
    ]


def supersede(conn: sqlite3.Connection, ids: list[int], now_ns: int) -> None:
    conn.executemany(
        "UPDATE journal SET status = ?, finished_ns = ? WHERE id = ?",
        [(SUPERSEDED, now_ns, i) for i in ids],
    )


def last_paths(conn: sqlite3.Connection, hashes: list[str]) -> dict[str, str]:
    """{hash: the last path the journal saw the image at} (a deleted file's old path)."""
    out: dict[str, str] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for digest, path in conn.execute(
            "SELECT image_hash, COALESCE(old_path, path) FROM journal"
            f" WHERE image_hash IN ({marks}) AND COALESCE(old_path, path) IS NOT NULL"
            " AND kind NOT LIKE 'op:%' ORDER BY id",
            chunk,
        ):
            out[digest] = path
    return out
