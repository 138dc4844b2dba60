"""The label watch (catalog/label_watch.py): `repo status` compares the SYNCED and LOCAL
labels of the images written since it last looked, not of every image, and lists
exactly what the full comparison lists."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from support.treebuilder import db, new_repo, run_repo, write_image

from localrepo.catalog import label_watch, labels
from localrepo.catalog.db import write_epoch
from localrepo.catalog.sides import LOCAL, REMOTE, SYNCED


def _status(root: Path) -> list[dict]:
    proc = run_repo("-C", str(root), "status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["file_changes"]


def _mark_synced(root: Path) -> None:
    """What a sync that sent everything leaves in the labels: SYNCED equal to LOCAL
    (written as a sync writes rows: through image_label, so the triggers see it)."""
    conn = db(root)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM image_label WHERE state = ?", (SYNCED,))
        conn.execute(
            "INSERT INTO image_label (state, task_id, image_id, label_id, value)"
            " SELECT ?, task_id, image_id, label_id, value FROM image_label WHERE state = ?",
            (SYNCED, LOCAL),
        )
        conn.execute("UPDATE journal SET status = 'done' WHERE status = 'pending'")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _dirty(root: Path) -> int | None:
    conn = db(root)
    try:
        if not conn.execute("SELECT 1 FROM label_watch").fetchone():
            return None
        return conn.execute("SELECT COUNT(*) FROM label_dirty").fetchone()[0]
    finally:
        conn.close()


def _full(root: Path) -> tuple[dict, dict]:
    def full(conn: sqlite3.Connection, task_id: int) -> list[int]:
        rows = conn.execute(
            labels.differing_image_ids(False), labels.differ_args(task_id, SYNCED, LOCAL, False)
        )
        return [r[0] for r in rows]

    return _on_task(root, full)


def _watched(root: Path) -> tuple[dict, dict]:
    return _on_task(root, label_watch.differing_ids)


def _on_task(root: Path, read) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """The SYNCED and LOCAL labels of the images `read(conn, task id)` names."""
    conn = db(root)
    try:
        task_id = conn.execute("SELECT id FROM task").fetchone()[0]
        return labels.image_labels_in(conn, task_id, SYNCED, LOCAL, read(conn, task_id))
    finally:
        conn.close()


def test_status_compares_only_what_was_written_since_and_lists_what_a_full_look_lists(
    tmp_path: Path,
) -> None:
    root = new_repo(tmp_path / "r")
    for i in range(6):
        write_image(root, f"{'cat' if i % 2 else 'dog'}/{i}.jpg", i)
    first = _status(root)
    assert {c["path"] for c in first} == {f"{'cat' if i % 2 else 'dog'}/{i}.jpg" for i in range(6)}
    assert _dirty(root) == 6  # the watch began with every image new
    _mark_synced(root)
    assert _status(root) == []
    assert _dirty(root) == 0  # the images that agree again are let go
    assert _status(root) == [] and _dirty(root) == 0

    # A move to another label, a deleted file and a new one: only they are compared.
    shutil.move(root / "dog/0.jpg", root / "cat/0.jpg")
    (root / "dog/2.jpg").unlink()
    write_image(root, "bird/9.jpg", 9)
    changes = _status(root)
    assert {(c["kind"], c["path"]) for c in changes} == {
        ("relabelled", "cat/0.jpg"),
        ("deleted", "dog/2.jpg"),
        ("new", "bird/9.jpg"),
    }, changes
    assert _dirty(root) == 3
    assert _watched(root) == _full(root)
    assert _status(root) == changes  # again: the same answer from the watch alone

    # The watch dropped, the same status from a full comparison (which begins it again).
    conn = db(root)
    try:
        conn.execute("DELETE FROM label_watch")
    finally:
        conn.close()
    assert _status(root) == changes
    assert _dirty(root) == 3


def test_rows_written_by_any_code_join_the_watch(tmp_path: Path) -> None:
    """A write that does not go through the catalog's functions (here raw SQL, as a
    cascade would) is still seen: the triggers add its images."""
    root = new_repo(tmp_path / "r")
    write_image(root, "cat/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    _status(root)
    _mark_synced(root)
    assert _status(root) == [] and _dirty(root) == 0
    conn = db(root)
    try:  # the REMOTE state is not what status compares: no image joins for it
        conn.execute(
            "INSERT INTO image_label (state, task_id, image_id, label_id, value)"
            " SELECT ?, task_id, image_id, label_id, value FROM image_label WHERE state = ?",
            (REMOTE, LOCAL),
        )
        assert conn.execute("SELECT COUNT(*) FROM label_dirty").fetchone()[0] == 0
        conn.execute("DELETE FROM image_label WHERE state = ? AND label_id IN"
                     " (SELECT id FROM label WHERE name = 'dog')", (SYNCED,))  # fmt: skip
    finally:
        conn.close()
    assert _dirty(root) == 1
    assert [c["path"] for c in _status(root)] == ["dog/b.jpg"]
    assert _watched(root) == _full(root)


def test_a_status_writes_no_epoch_and_waits_for_no_lock(tmp_path: Path) -> None:
    """The watch is bookkeeping: a status leaves the write epoch where it was (the
    quiet shortcut of the next sync still holds), and while another process holds the
    write lock it compares in full instead of waiting."""
    root = new_repo(tmp_path / "r")
    write_image(root, "cat/a.jpg", 1)
    _status(root)
    _mark_synced(root)
    conn = db(root)
    try:
        epoch = write_epoch(conn)
    finally:
        conn.close()
    assert _status(root) == []
    conn = db(root)
    try:
        assert write_epoch(conn) == epoch
        conn.execute("DELETE FROM label_watch")
        conn.execute("DELETE FROM label_dirty")
    finally:
        conn.close()
    shutil.move(root / "cat/a.jpg", root / "cat/b.jpg")  # no label change
    write_image(root, "dog/c.jpg", 3)
    expected = _status(root)  # scans (its writes move the epoch) and begins the watch
    assert {c["path"] for c in expected} == {"dog/c.jpg", "cat/b.jpg"}
    conn = db(root)
    conn.execute("DELETE FROM label_watch")
    holder = sqlite3.connect(db_path := root / ".localrepo" / "catalog.db")
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        assert _status(root) == expected
        assert not conn.execute("SELECT 1 FROM label_watch").fetchone()  # not begun
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        conn.close()
    assert db_path.exists()
