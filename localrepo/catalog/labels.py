"""Labels: the label table (by name and type), the labels attached to tasks
(`task_label`) and to images within a task (`image_label`), both in the three states
(`catalog/sides.py`).

Owns every read and write of `label`, `task_label` and `image_label`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from localrepo.catalog.db import rows_in, rows_of_ids
from localrepo.catalog.sides import LOCAL

# -- the label table ----------------------------------------------------------------------


def label_ids(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    return {(r[0], r[1]): r[2] for r in conn.execute("SELECT name, type, id FROM label")}


def ensure_labels(
    conn: sqlite3.Connection, wanted: Iterable[tuple[str, str]], known: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    for key in sorted(set(wanted) - known.keys()):
        cur = conn.execute("INSERT INTO label(name, type) VALUES (?, ?)", key)
        known[key] = int(cur.lastrowid or 0)
    return known


def label_row(conn: sqlite3.Connection, name: str, label_type: str, remote_id: str | None) -> int:
    """The id of the label (`name`, `label_type`), added if new; its remote id recorded
    when given (a known one is kept when not). A row already as asked is not written:
    a no-change sync writes nothing (the quiet mark's write epoch, catalog/db.py)."""
    conn.execute(
        "INSERT INTO label(name, type, remote_id) VALUES (?, ?, ?) ON CONFLICT(name, type)"
        " DO UPDATE SET remote_id = COALESCE(excluded.remote_id, label.remote_id)"
        " WHERE label.remote_id IS NOT COALESCE(excluded.remote_id, label.remote_id)",
        (name, label_type, remote_id),
    )
    row = conn.execute(
        "SELECT id FROM label WHERE name = ? AND type = ?", (name, label_type)
    ).fetchone()
    return int(row[0])


# -- task labels --------------------------------------------------------------------------


def task_label_names(conn: sqlite3.Connection, task_id: int, state: str) -> frozenset[str]:
    """The names of the labels attached to the task in `state`."""
    return frozenset(
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM task_label tl JOIN label l ON l.id = tl.label_id"
            " WHERE tl.state = ? AND tl.task_id = ?",
            (state, task_id),
        )
    )


def sorted_task_label_names(conn: sqlite3.Connection, task_id: int, state: str) -> list[str]:
    """task_label_names(), sorted."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT l.name FROM task_label tl JOIN label l ON l.id = tl.label_id"
            " WHERE tl.task_id = ? AND tl.state = ? ORDER BY l.name",
            (task_id, state),
        )
    ]


def task_label_names_by_task(conn: sqlite3.Connection, state: str) -> list[tuple[int, str]]:
    """[(task id, label name)] of every task's labels in `state`."""
    return conn.execute(
        "SELECT tl.task_id, l.name FROM task_label tl JOIN label l ON l.id = tl.label_id"
        " WHERE tl.state = ?",
        (state,),
    ).fetchall()


def attach(conn: sqlite3.Connection, state: str, task_id: int, label_id: int) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO task_label(state, task_id, label_id) VALUES (?,?,?)",
        (state, task_id, label_id),
    )


def detach(conn: sqlite3.Connection, state: str, task_id: int, label_id: int) -> None:
    conn.execute(
        "DELETE FROM task_label WHERE state = ? AND task_id = ? AND label_id = ?",
        (state, task_id, label_id),
    )


def replace_local_task_labels(conn: sqlite3.Connection, rows: list[tuple[str, int, int]]) -> None:
    """The scanner's layout pass: the LOCAL task labels are exactly these (state, task
    id, label id) rows."""
    conn.execute("DELETE FROM task_label WHERE state = ?", (LOCAL,))
    conn.executemany("INSERT INTO task_label(state, task_id, label_id) VALUES (?,?,?)", rows)


# -- image labels -------------------------------------------------------------------------


def has_local_labels(conn: sqlite3.Connection) -> bool:
    """Whether any image has a label in the LOCAL state."""
    row = conn.execute("SELECT 1 FROM image_label WHERE state = ? LIMIT 1", (LOCAL,)).fetchone()
    return row is not None


def local_image_labels(
    conn: sqlite3.Connection,
) -> dict[tuple[int, int], dict[int, float | None]]:
    """{(task id, image id): {label id: value}} in the LOCAL state."""
    out: dict[tuple[int, int], dict[int, float | None]] = {}
    for task_id, image_id, label_id, value in conn.execute(
        "SELECT task_id, image_id, label_id, value FROM image_label WHERE state = ?", (LOCAL,)
    ):
        out.setdefault((task_id, image_id), {})[label_id] = value
    return out


def local_image_labels_of(
    conn: sqlite3.Connection, task_ids: list[int], image_ids: list[int]
) -> dict[tuple[int, int], dict[int, float | None]]:
    """local_image_labels() of these images in these tasks only (a lookup by the
    primary key, which starts with the state and the task)."""
    out: dict[tuple[int, int], dict[int, float | None]] = {}
    for task_id in task_ids:
        for image_id, label_id, value in rows_in(
            conn,
            "SELECT image_id, label_id, value FROM image_label"
            " WHERE state = ? AND task_id = ? AND image_id IN ({marks})",
            image_ids,
            before=(LOCAL, task_id),
        ):
            out.setdefault((task_id, image_id), {})[label_id] = value
    return out


def insert_image_labels(
    conn: sqlite3.Connection, rows: list[tuple[str, int, int, int, float | None]]
) -> None:
    """(state, task id, image id, label id, value) rows, in one statement."""
    conn.executemany(
        "INSERT INTO image_label(state, task_id, image_id, label_id, value) VALUES (?,?,?,?,?)",
        rows,
    )


def rewrite_local_image_labels(
    conn: sqlite3.Connection,
    dirty: list[tuple[int, int]],
    old_rows: dict[tuple[int, int], dict[int, float | None]],
    new_rows: dict[tuple[int, int], dict[int, float | None]],
) -> None:
    """The scanner's layout pass: the LOCAL labels of the `dirty` (task id, image id)
    pairs go from `old_rows` to `new_rows` ({pair: {label id: value}})."""
    conn.executemany(
        "DELETE FROM image_label WHERE state = ? AND task_id = ? AND image_id = ?",
        [(LOCAL, t, i) for t, i in dirty if (t, i) in old_rows],
    )
    conn.executemany(
        "INSERT INTO image_label(state, task_id, image_id, label_id, value) VALUES (?,?,?,?,?)",
        [(LOCAL, t, i, lid, v) for (t, i) in dirty for lid, v in new_rows.get((t, i), {}).items()],
    )


def set_image_labels(
    conn: sqlite3.Connection,
    state: str,
    task_id: int,
    image_id: int,
    labels: dict[str, float | None],
    label_type: str,
    remote_label_ids: dict[str, str],
) -> None:
    """The image's labels in the task, in `state`, are exactly `labels` ({name: value});
    a label row is added for a new name (with its remote id from `remote_label_ids`)."""
    conn.execute(
        "DELETE FROM image_label WHERE state = ? AND task_id = ? AND image_id = ?",
        (state, task_id, image_id),
    )
    for name, value in labels.items():
        label_id = label_row(conn, name, label_type, remote_label_ids.get(name))
        conn.execute(
            "INSERT INTO image_label(state, task_id, image_id, label_id, value) VALUES (?,?,?,?,?)",
            (state, task_id, image_id, label_id, value),
        )


def task_image_labels(
    conn: sqlite3.Connection, task_id: int, state: str
) -> dict[str, dict[str, float | None]]:
    """{image hash: {label name: value}} of the task's images in `state`."""
    out: dict[str, dict[str, float | None]] = {}
    for h, name, value in conn.execute(
        "SELECT i.hash, l.name, il.value FROM image_label il JOIN image i ON i.id = il.image_id"
        " JOIN label l ON l.id = il.label_id WHERE il.state = ? AND il.task_id = ?",
        (state, task_id),
    ):
        out.setdefault(h, {})[name] = value
    return out


def image_label_names(
    conn: sqlite3.Connection, task_id: int, state: str
) -> list[tuple[int, str, float | None]]:
    """[(image id, label name, value)] of the task's image labels in `state`, by name."""
    return conn.execute(
        "SELECT il.image_id, l.name, il.value FROM image_label il JOIN label l"
        " ON l.id = il.label_id WHERE il.task_id = ? AND il.state = ? ORDER BY l.name",
        (task_id, state),
    ).fetchall()


def differing_image_ids(only_dirty: bool) -> str:
    """The query of the ids of a task's images whose labels differ between two states,
    its parameters differ_args's; each side narrowed to the task's `label_dirty` images
    (catalog/label_watch.py) when `only_dirty`."""
    sides = "SELECT image_id, label_id, value FROM image_label WHERE task_id = ? AND state = ?"
    if only_dirty:
        sides += " AND image_id IN (SELECT image_id FROM label_dirty WHERE task_id = ?)"
    return (
        f"SELECT image_id FROM ({sides} EXCEPT {sides})"
        f" UNION SELECT image_id FROM ({sides} EXCEPT {sides})"
    )


def differ_args(task_id: int, first: str, second: str, only_dirty: bool) -> tuple:
    one, other = (task_id, first), (task_id, second)
    if only_dirty:
        one, other = (*one, task_id), (*other, task_id)
    return (*one, *other, *other, *one)


def has_image_labels(conn: sqlite3.Connection, task_id: int, state: str) -> bool:
    """Whether any of the task's images has a label in `state`."""
    row = conn.execute(
        "SELECT 1 FROM image_label WHERE state = ? AND task_id = ? LIMIT 1", (state, task_id)
    ).fetchone()
    return row is not None


def labelled_only_in(
    conn: sqlite3.Connection, task_id: int, first: str, second: str, image_ids: Sequence[int]
) -> set[int]:
    """Those of these images that have labels in `first` and none in `second` (`repo
    status`: synced images whose local labels are gone, as a deleted file's are); a
    lookup by the primary key per image."""
    return {
        r[0]
        for r in rows_in(
            conn,
            "SELECT DISTINCT s.image_id FROM image_label s WHERE s.state = ? AND s.task_id = ?"
            " AND s.image_id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM image_label o"
            " WHERE o.state = ? AND o.task_id = s.task_id AND o.image_id = s.image_id)",
            image_ids,
            before=(first, task_id, second),
        )
    }


def image_labels_in(
    conn: sqlite3.Connection, task_id: int, first: str, second: str, image_ids: Sequence[int]
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float | None]]]:
    """({image hash: {label name: value}} in `first`, the same in `second`) of these
    images of the task (`repo status`: SYNCED vs LOCAL of those whose labels differ,
    `differing_image_ids`); an image with no label in a state is absent from that map."""
    rows = rows_of_ids(
        conn,
        "SELECT il.image_id, il.state, i.hash, l.name, il.value FROM image_label il"
        " JOIN image i ON i.id = il.image_id JOIN label l ON l.id = il.label_id"
        " WHERE il.task_id = ? AND il.state IN (?, ?) AND {ids}",
        "il.image_id",
        sorted(image_ids),
        (task_id, first, second),
    )
    return _label_maps((r[1:] for r in rows), first)


def _label_maps(
    rows: Iterable[tuple[str, str, str, float | None]], first: str
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float | None]]]:
    out: tuple[dict[str, dict[str, float | None]], ...] = ({}, {})
    for state, h, name, value in rows:
        out[0 if state == first else 1].setdefault(h, {})[name] = value
    return out[0], out[1]
