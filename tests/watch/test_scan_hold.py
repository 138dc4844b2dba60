"""Scanner.scan(hold=...): files the watcher knows are still being written keep the state
the catalog has for them (or stay unknown) until a scan without them."""

from __future__ import annotations

import os
from pathlib import Path

from support.treebuilder import db, files, img, journal, new_repo, scan, write_image

from localrepo.catalog import files as catalog_files
from localrepo.scan.hashing import hash_bytes
from localrepo.scan.statpass import hold_back
from localrepo.scan.walk import WalkResult


def test_held_files_keep_their_catalogued_state(tmp_path: Path):
    root = new_repo(tmp_path / "r")
    old = write_image(root, "cats/a.jpg", 1)
    write_image(root, "cats/b.jpg", 2)
    scan(root)
    before_files, before_journal = files(root), journal(root)

    half = img(3)[:200]  # a.jpg being overwritten, b.jpg gone mid-rename, c.jpg arriving
    (root / "cats/a.jpg").write_bytes(half)
    os.unlink(root / "cats/b.jpg")
    (root / "dogs").mkdir()
    (root / "dogs/c.jpg").write_bytes(half)
    rep = scan(root, hold={"cats/a.jpg", "cats/b.jpg", "dogs/c.jpg"})
    assert rep.changes == [] and rep.hashed == 0 and not rep.invalid
    assert files(root) == before_files and journal(root)[: len(before_journal)] == before_journal
    assert files(root)["cats/a.jpg"] == (old, None)

    # Settled: the next scan (without hold) sees everything as it now is.
    (root / "cats/a.jpg").write_bytes(img(3))
    (root / "dogs/c.jpg").write_bytes(img(4))
    rep = scan(root)
    got = {(c.kind, c.path or c.old_path) for c in rep.changes}
    assert got == {("modified", "cats/a.jpg"), ("deleted", "cats/b.jpg"), ("added", "dogs/c.jpg")}
    assert files(root)["cats/a.jpg"] == (hash_bytes(img(3)), None)


def test_hold_leaves_other_files_alone(tmp_path: Path):
    root = new_repo(tmp_path / "r")
    write_image(root, "cats/a.jpg", 1)
    scan(root)
    write_image(root, "cats/new.jpg", 5)
    (root / "cats/partial.jpg").write_bytes(img(6)[:100])
    rep = scan(root, hold={"cats/partial.jpg"})
    assert [(c.kind, c.path) for c in rep.changes] == [("added", "cats/new.jpg")]
    assert "cats/partial.jpg" not in files(root)


def test_a_held_rename_target_is_never_hidden(tmp_path: Path):
    """The watcher may hold a move's new name while the old name's event is still on its
    way: the move must not read as a delete (and an upload of the "new" file later)."""
    root = new_repo(tmp_path / "r")
    h = write_image(root, "cats/a.jpg", 1)
    other = write_image(root, "cats/b.jpg", 2)
    scan(root)
    (root / "dogs").mkdir()
    os.rename(root / "cats/a.jpg", root / "dogs/a.jpg")
    rep = scan(root, hold={"dogs/a.jpg"})
    assert [(c.kind, c.path, c.old_path) for c in rep.changes] == [
        ("moved", "dogs/a.jpg", "cats/a.jpg")
    ]
    assert files(root) == {"dogs/a.jpg": (h, None), "cats/b.jpg": (other, None)}


def test_a_new_file_reusing_a_deleted_files_inode_is_still_held(tmp_path: Path):
    """The file system hands a deleted file's inode to the next file created (CI saw it:
    b.jpg deleted, dogs/c.jpg got its inode). Only a stat that matches in size and mtime
    too is a rename; a half-written newcomer on a recycled inode stays held."""
    root = new_repo(tmp_path / "r")
    write_image(root, "cats/b.jpg", 2)
    scan(root)
    conn = db(root)
    try:
        dev, ino, size, mtime, ctime = catalog_files.load_stats(conn)["cats/b.jpg"]
        cached = catalog_files.load_files(conn)
        recycled = WalkResult(images={"dogs/c.jpg": (dev, ino, 200, mtime + 5_000, ctime)})
        assert hold_back(recycled, cached, conn, frozenset({"dogs/c.jpg"})) == {"dogs/c.jpg"}
        assert "dogs/c.jpg" not in recycled.images

        renamed = WalkResult(images={"dogs/c.jpg": (dev, ino, size, mtime, ctime + 1)})
        assert hold_back(renamed, cached, conn, frozenset({"dogs/c.jpg"})) == frozenset()
        assert "dogs/c.jpg" in renamed.images
    finally:
        conn.close()
