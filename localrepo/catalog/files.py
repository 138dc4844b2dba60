"""The file table and the stat cache: path -> image, each file's (dev, inode, size,
mtime, ctime) and stat signature, the reason a file is not a valid image, the image a
damaged file held (`damaged_image_id`: sync holds it back); and the `aux_file` rows
(sidecar and ignore file stats) that tell the scanner whether to re-derive the layout.

Owns every read and write of `file` and `aux_file`. The scanner's hot paths are here:
the stat-only pass loads the cache in one query (`load_files`), and the file rows of a
scan are written a batch at a time (`write_file_rows`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence

from localrepo.catalog.db import rows_in, rows_of_ids


def like_prefix(prefix: str) -> str:
    """`prefix` escaped for `LIKE ? ESCAPE '\\'`."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A cached file row for the stat-only pass is its stat signature alone: a status of
# 100,000 files loads 100,000 of them, and dict() over (path, int) rows builds them in C.
CachedFile = int
Stat = tuple[int, int, int, int, int]  # (dev, inode, size, mtime_ns, ctime_ns)


def stat_sig(stat: Stat) -> int:
    return hash(stat)


def load_files(conn: sqlite3.Connection) -> dict[str, CachedFile]:
    """{path: stat signature} of every catalogued file."""
    return dict(conn.execute("SELECT path, stat_sig FROM file"))


def _between(lo: str, hi: str | None) -> tuple[str, tuple[str, ...]]:
    """A path range's condition and its parameters (hi None: no upper end)."""
    return ("path >= ?", (lo,)) if hi is None else ("path >= ? AND path < ?", (lo, hi))


def stat_sigs_between(conn: sqlite3.Connection, lo: str, hi: str | None) -> dict[str, int]:
    """load_files() of the paths in [lo, hi) (by the path index)."""
    where, args = _between(lo, hi)
    return dict(conn.execute(f"SELECT path, stat_sig FROM file WHERE {where}", args))


# A row whose mtime is this close to the moment it was written may hide a later edit of
# the same size within the same timestamp tick (git's racy rule): scan/statpass.py.
# Fixed when the row is written, so a partial index holds the racy rows; the literal in
# UNSETTLED is the index's (revision 0009), which SQLite matches as written.
RACY_NS = 2_000_000_000
UNSETTLED = "(reason IS NOT NULL OR mtime_ns >= cached_ns - 2000000000)"


def unsettled_between(
    conn: sqlite3.Connection, lo: str, hi: str | None
) -> list[tuple[str, bool, str | None]]:
    """[(path, racy, reason)] of the rows in [lo, hi) that are racy (see load_racy) or
    invalid (a reason), from their partial index."""
    where, args = _between(lo, hi)
    return [
        (p, bool(racy), reason)
        for p, racy, reason in conn.execute(
            f"SELECT path, mtime_ns >= cached_ns - {RACY_NS}, reason FROM file"
            f" WHERE {where} AND {UNSETTLED}",
            args,
        )
    ]


def has_files(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM file LIMIT 1").fetchone() is not None


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


Node = tuple[int, int, int]  # (dev, inode, size)


def known_nodes(conn: sqlite3.Connection, nodes: set[Node]) -> set[Node]:
    """Those of `nodes` that a valid file's row has (a move or a touch keeps them). A
    few are looked for by inode, in one pass over the table per 500 and no Python
    object per row; many, by loading every valid row's."""
    if len(nodes) > 2000:
        rows = conn.execute(
            "SELECT dev, inode, size FROM file WHERE reason IS NULL AND image_id IS NOT NULL"
        )
        return nodes & set(rows)
    out: set[Node] = set()
    out.update(
        n
        for n in rows_in(
            conn,
            "SELECT dev, inode, size FROM file WHERE reason IS NULL"
            " AND image_id IS NOT NULL AND inode IN ({marks})",
            sorted({n[1] for n in nodes}),
        )
        if n in nodes
    )
    return out


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
    return list(
        rows_in(
            conn,
            "SELECT path, dev, inode, reason, COALESCE(damaged_image_id, image_id) FROM file"
            " WHERE path IN ({marks}) AND COALESCE(damaged_image_id, image_id) IS NOT NULL",
            gone,
        )
    )


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


def file_hashes_of(conn: sqlite3.Connection, paths: Collection[str]) -> dict[str, str]:
    """load_file_hashes() of these paths only."""
    return dict(
        rows_in(
            conn,
            "SELECT f.path, i.hash FROM file f JOIN image i ON i.id = f.image_id"
            " WHERE f.reason IS NULL AND f.path IN ({marks})",
            sorted(paths),
        )
    )


def files_holding(conn: sqlite3.Connection, hashes: Collection[str]) -> list[tuple[str, str]]:
    """[(path, hash)] of the valid files that hold these images (by the image_id index)."""
    return list(
        rows_in(
            conn,
            "SELECT f.path, i.hash FROM image i JOIN file f ON f.image_id = i.id"
            " WHERE i.hash IN ({marks}) AND f.reason IS NULL",
            sorted(hashes),
        )
    )


def delete_files(conn: sqlite3.Connection, paths: Iterable[str]) -> None:
    """Delete the rows of these paths (files gone, or moved away by the sync engine)."""
    conn.executemany("DELETE FROM file WHERE path = ?", [(p,) for p in paths])


def delete_under(conn: sqlite3.Connection, folder: str) -> int:
    """Forget every file row under `folder` (repository-relative, no trailing slash):
    `repo task remove` stops tracking a folder. Returns how many went."""
    cur = conn.execute(
        "DELETE FROM file WHERE path LIKE ? ESCAPE '\\'", (like_prefix(folder + "/") + "%",)
    )
    return cur.rowcount


def stats_of(conn: sqlite3.Connection, paths: list[str]) -> dict[str, Stat]:
    """{path: (dev, inode, size, mtime_ns, ctime_ns)} of these paths' rows."""
    out: dict[str, Stat] = {}
    if len(paths) > 2000:  # one pass over the table is cheaper than many lookups
        stats = load_stats(conn)
        for p in paths:
            st = stats.get(p)
            if st is not None:
                out[p] = st
        return out
    for row in rows_in(
        conn,
        "SELECT path, dev, inode, size, mtime_ns, ctime_ns FROM file WHERE path IN ({marks})",
        paths,
    ):
        out[row[0]] = row[1:]
    return out


def valid_files(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """[(path, content hash)] of every file that is a valid image, by path."""
    return conn.execute(
        "SELECT f.path, i.hash FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.reason IS NULL ORDER BY f.path"
    ).fetchall()


def each_valid_file_by_image(conn: sqlite3.Connection) -> Iterator[tuple[int, str]]:
    """(image id, path) of every file that is a valid image, the copies of an image
    together (by image id, then path), row by row: by the index on file.image_id."""
    return conn.execute(
        "SELECT image_id, path FROM file WHERE reason IS NULL AND image_id IS NOT NULL"
        " ORDER BY image_id, path"
    )


def valid_files_under(conn: sqlite3.Connection, prefix: str) -> Iterator[tuple[str, str]]:
    """(path, content hash) of the valid image files whose paths start with `prefix`
    ("" every one; a folder's prefix ends with "/"), by path."""
    return conn.execute(
        "SELECT f.path, i.hash FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.reason IS NULL AND f.path LIKE ? ESCAPE '\\' ORDER BY f.path",
        (like_prefix(prefix) + "%",),
    )


def valid_paths_of(conn: sqlite3.Connection, image_ids: Sequence[int]) -> dict[str, list[str]]:
    """{hash: its valid files, by path} of these images (by the image_id index)."""
    out: dict[str, list[str]] = {}
    for _id, digest, path in rows_of_ids(
        conn,
        "SELECT f.image_id, i.hash, f.path FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.reason IS NULL AND {ids} ORDER BY f.path",
        "f.image_id",
        sorted(image_ids),
    ):
        out.setdefault(digest, []).append(path)
    return out


def image_files(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """[(path, image id)] of the files that hold an image, by path."""
    return conn.execute(
        "SELECT path, image_id FROM file WHERE image_id IS NOT NULL ORDER BY path"
    ).fetchall()


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


def file_nodes(
    conn: sqlite3.Connection, hashes: list[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """{hash: [(path, dev, inode)]} of the valid files holding these images."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for digest, path, dev, inode in rows_in(
        conn,
        "SELECT i.hash, f.path, f.dev, f.inode FROM file f JOIN image i ON i.id = f.image_id"
        " WHERE f.reason IS NULL AND i.hash IN ({marks}) ORDER BY f.path",
        hashes,
    ):
        out.setdefault(digest, []).append((path, dev, inode))
    return out


# -- sidecars and ignore files ------------------------------------------------------------


def load_aux(conn: sqlite3.Connection) -> Iterator[tuple[str, int, int, int]]:
    """(path, size, mtime_ns, inode) of every sidecar and ignore file the last layout
    pass saw."""
    return conn.execute("SELECT path, size, mtime_ns, inode FROM aux_file")


def replace_aux(conn: sqlite3.Connection, rows: list[tuple[str, int, int, int]]) -> None:
    """The sidecars and ignore files are exactly these (path, size, mtime_ns, inode)."""
    conn.execute("DELETE FROM aux_file")
    conn.executemany(
        "INSERT INTO aux_file(path, size, mtime_ns, inode, content_hash) VALUES (?,?,?,?,'')",
        rows,
    )


def recorded_stats(
    conn: sqlite3.Connection, paths: Iterable[str]
) -> dict[str, tuple[int, int, int]]:
    """{path: (size, mtime_ns, inode)} as the catalog recorded these paths (files and
    sidecars / ignore files)."""
    wanted = list(paths)
    out: dict[str, tuple[int, int, int]] = {}
    for table in ("file", "aux_file"):
        for path, size, mtime, inode in rows_in(
            conn,
            f"SELECT path, size, mtime_ns, inode FROM {table} WHERE path IN ({{marks}})",
            wanted,
        ):
            out[path] = (size, mtime, inode)
    return out
