"""The scanner on real trees, the first scan with the worker pool: hashing starts during
the walk, the result equals a serial scan's, and the journal stays the scan's own diff."""

from __future__ import annotations

import os
from pathlib import Path

from support.imagegen import truncated_jpeg
from support.treebuilder import (
    db,
    files,
    image_labels,
    new_repo,
    scan,
    task_labels,
    write,
    write_image,
)

from localrepo.scan.hashing import (
    TRUNCATED,
)


def _pool_tree(root: Path) -> None:
    """Enough files for the worker pool, in several folders: copies, hard links across
    folders, bad files and an unlabelled file, so every path of the first scan runs."""
    for i in range(330):
        write_image(root, f"tag{i % 6}/img{i:04d}.jpg", 9000 + i)
    write_image(root, "tag0/copy.jpg", 9001)  # same bytes as tag1/img0001.jpg
    os.link(root / "tag2/img0002.jpg", root / "tag3/linked.jpg")  # a hard link
    write(root, "tag4/broken.jpg", truncated_jpeg())
    write(root, "tag5/text.jpg", "not an image")
    write_image(root, "loose.jpg", 9200)


def test_a_first_scan_with_the_pool_starts_hashing_during_the_walk_and_equals_one_without(
    tmp_path: Path, monkeypatch
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from localrepo.scan import diff, statpass
    from localrepo.scan import scanner as scanner_mod

    roots = []
    for name in ("serial", "pool"):
        root = new_repo(tmp_path / name, task_type="multi_label")
        _pool_tree(root)
        roots.append(root)
    serial = scan(roots[0])  # in-process, after the walk

    events: list[str] = []
    real_walk = statpass.walk
    real_diff = diff.file_changes

    def observed_diff(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("diff")
        return real_diff(*args, **kwargs)

    def observed_walk(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_walk(*args, **kwargs)
        events.append("walk done")
        return result

    class ObservedPool(ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            events.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(statpass, "walk", observed_walk)
    monkeypatch.setattr(diff, "file_changes", observed_diff)
    conn = db(roots[1])
    try:
        pooled = scanner_mod.Scanner(
            roots[1], conn, workers=2, executor_factory=ObservedPool
        ).scan()
    finally:
        conn.close()
    # Its diff is the one built as results came, and it is the serial scan's diff.
    assert "diff" not in events
    assert pooled.changes == serial.changes and len(serial.changes) > 300
    walk_done = events.index("walk done")
    assert "examine_batch" in events[:walk_done], events[: walk_done + 1]
    assert events.count("examine_batch") >= 5
    # The same catalog either way: files, images, labels and the journal.
    assert files(roots[1]) == files(roots[0])
    assert image_labels(roots[1]) == image_labels(roots[0])
    assert task_labels(roots[1]) == task_labels(roots[0])
    # The pool's first scan journals each addition as its result arrives; the journal
    # must still be the serial scan's, entry for entry and in path order.
    assert journal_rows(roots[1]) == journal_rows(roots[0])
    added = [r[2] for r in journal_rows(roots[1])]
    assert added == sorted(added) and len(added) == len(set(added)) > 300
    assert files(roots[1])["tag3/linked.jpg"][0] == files(roots[1])["tag2/img0002.jpg"][0]
    assert files(roots[1])["tag4/broken.jpg"][1] == TRUNCATED

    # Later scans append after the streamed entries, the same way on both.
    for root in roots:
        os.unlink(root / "tag0/copy.jpg")
        write_image(root, "tag9/new.jpg", 9300)
    scan(roots[0])
    conn = db(roots[1])
    try:
        scanner_mod.Scanner(roots[1], conn, workers=2).scan()
    finally:
        conn.close()
    assert journal_rows(roots[1]) == journal_rows(roots[0])
    assert sorted(r[0] for r in journal_rows(roots[1])[-2:]) == ["added", "deleted"]


def journal_rows(root: Path) -> list[tuple]:
    """Every journal entry, in id order, with all it says (but its id and time)."""
    conn = db(root)
    try:
        return conn.execute(
            "SELECT kind, task_id, path, old_path, image_hash, detail, status, attempts"
            " FROM journal ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_a_streamed_addition_the_diff_does_not_confirm_is_taken_back(
    tmp_path: Path, monkeypatch
) -> None:
    """The pool's first scan journals additions as results arrive; the scan's own diff
    is still what the journal must say. (Faults injected: the streamed additions do not
    pass for the diff, and the diff leaves one out.)"""
    from localrepo.scan import diff, writes
    from localrepo.scan import scanner as scanner_mod

    root = new_repo(tmp_path / "r", task_type="multi_label")
    _pool_tree(root)
    real = diff.file_changes
    dropped: list[str] = []

    def diff_without_one(*args, **kwargs):  # type: ignore[no-untyped-def]
        changes = real(*args, **kwargs)
        dropped.append(changes[7].path)
        return changes[:7] + changes[8:]

    monkeypatch.setattr(writes.Writes, "streamed_changes", lambda _self, _new_map: None)
    monkeypatch.setattr(diff, "file_changes", diff_without_one)
    conn = db(root)
    try:
        rep = scanner_mod.Scanner(root, conn, workers=2).scan()
    finally:
        conn.close()
    paths = [r[2] for r in journal_rows(root)]
    assert dropped and dropped[0] not in paths
    assert paths == [c.path for c in rep.changes] and len(paths) > 300
