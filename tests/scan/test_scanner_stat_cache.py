"""The scanner on real trees, the stat cache: the racy rule (a same-stat rewrite in the
scan's timestamp tick is still seen, for images and sidecars) and what is never rehashed."""

from __future__ import annotations

import os
from pathlib import Path

from support.treebuilder import (
    age,
    db,
    files,
    image_labels,
    img,
    kinds,
    new_repo,
    scan,
    write,
    write_image,
)

from localrepo.catalog.files import stat_sig
from localrepo.scan.hashing import (
    hash_bytes,
)
from localrepo.scan.statpass import RACY_NS

# --------------------------------------------------------------------------- racy rule


def _rewrite_with_the_cached_stat(root: Path, rel: str, data: bytes, cached_ns=None) -> None:
    """Rewrite a file with same-size bytes and give its cache row the file's new stat,
    as a scan in the same timestamp tick would have written it (mtime kept as cached)."""
    conn = db(root)
    (mtime_ns,) = conn.execute("SELECT mtime_ns FROM file WHERE path = ?", (rel,)).fetchone()
    path = root / rel
    assert path.stat().st_size == len(data)
    with open(path, "r+b") as fh:  # in place: same inode
        fh.write(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    st = path.stat()
    stat = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    conn.execute(
        "UPDATE file SET dev=?, inode=?, size=?, mtime_ns=?, ctime_ns=?, stat_sig=?,"
        " cached_ns=COALESCE(?, cached_ns) WHERE path=?",
        (*stat, stat_sig(stat), cached_ns, rel),
    )
    conn.close()


def test_racy_rule_a_same_stat_rewrite_is_detected_on_the_next_scan(tmp_path: Path) -> None:
    """A file rewritten in the same timestamp tick as the scan that cached it, with the
    same size, has an unchanged stat. The cache row is racy (mtime within RACY_NS of the
    moment it was written), so the next scan re-hashes it anyway."""
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/b.jpg", 2)
    h1 = write_image(root, "dog/a.bmp", 1, old=False, fmt="BMP")  # written just now
    rep = scan(root)
    assert kinds(rep) == [("added", "dog/a.bmp", None), ("added", "dog/b.jpg", None)]
    conn = db(root)
    mtime_ns, cached_ns = conn.execute(
        "SELECT mtime_ns, cached_ns FROM file WHERE path = 'dog/a.bmp'"
    ).fetchone()
    conn.close()
    assert mtime_ns >= cached_ns - RACY_NS  # the cache row really is racy

    second = img(7, "BMP")  # BMPs of one size have one length: a same-size rewrite
    _rewrite_with_the_cached_stat(root, "dog/a.bmp", second)
    rep2 = scan(root)
    h2 = hash_bytes(second)
    assert h2 != h1
    assert rep2.hashed == 1
    assert kinds(rep2) == [("modified", "dog/a.bmp", None)]
    assert files(root)["dog/a.bmp"] == (h2, None)
    assert image_labels(root)[("t", h2)] == {"dog": None}
    assert rep2.changes[0].old_hash == h1


def test_without_the_racy_window_a_same_stat_rewrite_is_not_rehashed(tmp_path: Path) -> None:
    """The control for the test above: the same stat-identical rewrite, but the cache row
    was written long after the mtime (not racy), so the scan stays stat-only."""
    root = new_repo(tmp_path / "r")
    h1 = write_image(root, "dog/a.bmp", 1, fmt="BMP")
    scan(root)
    st = (root / "dog/a.bmp").stat()
    _rewrite_with_the_cached_stat(
        root, "dog/a.bmp", img(7, "BMP"), cached_ns=st.st_mtime_ns + 10 * RACY_NS
    )
    rep = scan(root)
    assert rep.hashed == 0 and rep.changes == []
    assert files(root)["dog/a.bmp"] == (h1, None)


def test_files_written_during_a_scan_window_are_rehashed_once(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1, old=False)
    scan(root)
    age(root / "dog/a.jpg")  # the mtime moves an hour back: a stat change, re-hashed
    assert scan(root).hashed == 1
    assert scan(root).hashed == 0  # and then no more


def test_racy_rule_covers_sidecars_too(tmp_path: Path) -> None:
    """A sidecar edited in the same timestamp tick as the scan that recorded it, with the
    same size, keeps its (size, mtime, inode): the next scan must still see the new value."""
    root = new_repo(tmp_path / "r", task_type="regression")
    ha = write_image(root, "age/a.jpg", 1)
    side = write(root, "age/metadata.jsonl", '{"file_name": "a.jpg", "value": 3.5}\n', old=False)
    scan(root)
    assert image_labels(root) == {("t", ha): {"age": 3.5}}
    st = side.stat()
    with open(side, "r+b") as fh:  # same size, in place, same mtime: a same-tick edit
        fh.write(b'{"file_name": "a.jpg", "value": 4.5}\n')
    os.utime(side, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (side.stat().st_size, side.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    rep = scan(root)
    assert [(c.kind, c.hash) for c in rep.changes] == [("value_changed", ha)]
    assert image_labels(root) == {("t", ha): {"age": 4.5}}
