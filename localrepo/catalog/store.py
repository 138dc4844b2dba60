"""Fast catalog queries on a plain sqlite3 connection (no ORM round trip per row)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterable

from localrepo.catalog.states import LOCAL
from localrepo.layout import TaskBinding

# A cached file row for the stat-only pass is its stat signature alone: a status of
# 100,000 files loads 100,000 of them, and dict() over (path, int) rows builds them in C.
CachedFile = int
Stat = tuple[int, int, int, int, int]  # (dev, inode, size, mtime_ns, ctime_ns)


def stat_sig(stat: Stat) -> int:
    return hash(stat)


def load_files(conn: sqlite3.Connection) -> dict[str, CachedFile]:
    """{path: stat signature} of every catalogued file."""
    return dict(conn.execute("SELECT path, stat_sig FROM file"))


def load_racy(conn: sqlite3.Connection, window_ns: int) -> set[str]:
    """Paths whose row was written within `window_ns` of the file's mtime: a write in the
    same clock tick may have left the stat unchanged, so the row proves nothing. (A file
    whose stat still matches its row still has the row's mtime, so the test is the row's.)"""
    return {
        p
        for (p,) in conn.execute(
            "SELECT path FROM file WHERE mtime_ns >= cached_ns - ?", (window_ns,)
        )
    }


def load_reasons(conn: sqlite3.Connection) -> dict[str, str]:
    """{path: reason} of the files that are not valid images."""
    return dict(conn.execute("SELECT path, reason FROM file WHERE reason IS NOT NULL"))


def load_stats(conn: sqlite3.Connection) -> dict[str, Stat]:
    """{path: (dev, inode, size, mtime_ns, ctime_ns)} of every catalogued file."""
    return {
        r[0]: r[1:]
        for r in conn.execute("SELECT path, dev, inode, size, mtime_ns, ctime_ns FROM file")
    }


FileRow = tuple[str, int | None, int, int, int, int, int, int, str | None]
"""(path, image_id, dev, inode, size, mtime_ns, ctime_ns, cached_ns, reason)"""
SignedFileRow = tuple[str, int | None, int, int, int, int, int, int, str | None, int]
"""A FileRow and its stat signature."""


def upsert_files(
    conn: sqlite3.Connection, rows: list[FileRow], known: Collection[str] = ()
) -> None:
    """Write file rows (with their stat signature); paths not in `known` are inserted
    plainly, which costs less than an upsert."""
    write_file_rows(conn, [(*r, stat_sig(r[2:7])) for r in rows], known)  # type: ignore[arg-type]


def write_file_rows(
    conn: sqlite3.Connection, rows: list[SignedFileRow], known: Collection[str] = ()
) -> None:
    """upsert_files() for rows that carry their stat signature already (the scanner's)."""
    new = [r for r in rows if r[0] not in known] if known else rows
    if new:
        conn.executemany(
            "INSERT INTO file(path, image_id, dev, inode, size, mtime_ns, ctime_ns, cached_ns,"
            " reason, stat_sig) VALUES (?,?,?,?,?,?,?,?,?,?)",
            new,
        )
        if len(new) == len(rows):
            return
        rows = [r for r in rows if r[0] in known]
    conn.executemany(
        "INSERT INTO file(path, image_id, dev, inode, size, mtime_ns, ctime_ns, cached_ns,"
        " reason, stat_sig) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET"
        " image_id=excluded.image_id, dev=excluded.dev, inode=excluded.inode,"
        " size=excluded.size, mtime_ns=excluded.mtime_ns, ctime_ns=excluded.ctime_ns,"
        " cached_ns=excluded.cached_ns, reason=excluded.reason, stat_sig=excluded.stat_sig,"
        # A valid file that turns invalid is damaged: it keeps the image it held, and
        # keeps it while it stays invalid; valid again, it is an ordinary file.
        " damaged_image_id = CASE WHEN excluded.reason IS NULL THEN NULL"
        " ELSE COALESCE(file.image_id, file.damaged_image_id) END",
        rows,
    )


GoneFile = tuple[str, int, int, str | None, int]
"""(path, dev, inode, reason, image id it held) of a file row about to go."""


def held_images_of(conn: sqlite3.Connection, gone: list[str]) -> list[GoneFile]:
    """What `carry_damage` needs of the rows of `gone` paths, read before they go."""
    out: list[GoneFile] = []
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out += conn.execute(
            "SELECT path, dev, inode, reason, COALESCE(damaged_image_id, image_id) FROM file"
            f" WHERE path IN ({marks}) AND COALESCE(damaged_image_id, image_id) IS NOT NULL",
            chunk,
        ).fetchall()
    return out


def carry_damage(conn: sqlite3.Connection, gone: list[GoneFile]) -> None:
    """A damaged file (or a valid one that turned invalid) that moved, say with its
    renamed label folder, keeps the image it held: a new invalid row takes the image of
    a gone row that was the same file: the same inode, or else (a file rewritten by a
    new inode, a FIFO or a symlink the walk does not stat) the only gone row of that
    file name. Holding an image too long is safe; losing the hold deletes it. Cheap when
    nothing invalid is new (the common case): one query over the invalid rows."""
    by_node: dict[tuple[int, int], str] = {}
    by_name: dict[str, list[str]] = {}
    for path, dev, inode in conn.execute(
        "SELECT path, dev, inode FROM file WHERE reason IS NOT NULL AND damaged_image_id IS NULL"
    ):
        if inode:
            by_node[(dev, inode)] = path
        by_name.setdefault(path.rpartition("/")[2], []).append(path)
    if not by_name:
        return
    carried: dict[str, int] = {}
    named: dict[str, list[int]] = {}
    for path, dev, inode, _reason, image_id in gone:
        target = by_node.get((dev, inode)) if inode else None
        if target is not None:
            carried[target] = image_id
        else:
            named.setdefault(path.rpartition("/")[2], []).append(image_id)
    for name, image_ids in named.items():
        targets = [p for p in by_name.get(name, []) if p not in carried]
        if len(image_ids) == 1 and len(targets) == 1:
            carried[targets[0]] = image_ids[0]
    conn.executemany(
        "UPDATE file SET damaged_image_id = ? WHERE path = ?",
        [(image_id, path) for path, image_id in carried.items()],
    )


def load_file_hashes(conn: sqlite3.Connection) -> dict[str, str]:
    """{path: content hash} of every file that is a valid image."""
    return dict(
        conn.execute(
            "SELECT f.path, i.hash FROM file f JOIN image i ON i.id = f.image_id"
            " WHERE f.reason IS NULL"
        )
    )


def load_bindings(conn: sqlite3.Connection) -> list[TaskBinding]:
    rows = conn.execute("SELECT id, name, type, root FROM task ORDER BY id")
    return [TaskBinding(task_id=r[0], name=r[1], type=r[2], root=r[3]) for r in rows]


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM repo_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO repo_meta(key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def image_ids_by_hash(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT hash, id FROM image"))


def label_ids(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    return {(r[0], r[1]): r[2] for r in conn.execute("SELECT name, type, id FROM label")}


def ensure_labels(
    conn: sqlite3.Connection, wanted: Iterable[tuple[str, str]], known: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    for key in sorted(set(wanted) - known.keys()):
        cur = conn.execute("INSERT INTO label(name, type) VALUES (?, ?)", key)
        known[key] = int(cur.lastrowid or 0)
    return known


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


def add_journal(
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
        "INSERT INTO journal(created_ns, kind, status, task_id, path, old_path, image_hash,"
        " detail, attempts) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, 0)",
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


def add_journal_many(
    conn: sqlite3.Connection,
    entries: Iterable[tuple[str, int | None, str | None, str | None, str | None, dict | None]],
    *,
    now_ns: int,
) -> None:
    """Many (kind, task_id, path, old_path, image_hash, detail) entries in one statement."""
    conn.executemany(
        "INSERT INTO journal(created_ns, kind, status, task_id, path, old_path, image_hash,"
        " detail, attempts) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, 0)",
        [
            (now_ns, k, t, p, o, h, json.dumps(d, sort_keys=True) if d else None)
            for k, t, p, o, h, d in entries
        ],
    )
