"""A large first scan, folder by folder (scan/firstscan.py), records what the whole-tree
first scan records.

Each tree is built twice; one copy is scanned the whole-tree way, the other folder by
folder (firstscan.MIN_FILES lowered to 1). Their catalogs, journals (in order) and
reports must agree, with the pool and in one process alike."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from support.treebuilder import (
    db,
    labels_by_path,
    new_repo,
    repo_main,
    run_repo,
    task_labels,
    write,
    write_image,
)

from localrepo.cli import report as cli_report
from localrepo.scan import firstlabels, firstscan
from localrepo.scan.report import ScanReport
from localrepo.scan.scanner import Scanner

from .test_layout_stream import copies, many, plain, sidecar, tagged, valueless
from .test_split_walk import recorded


def odd(root: Path) -> None:
    """Invalid, skipped and ignored files, hard links, a nested task, odd names."""
    many(root)
    write(root, "l1/broken.jpg", b"\xff\xd8 not a jpeg")
    write(root, "l2/empty.png", b"")
    os.symlink(root / "l1/1.jpg", root / "l2/link.jpg")  # skipped: a symlink
    os.link(root / "l3/3.jpg", root / "l4/hard-3.jpg")  # one inode, two names
    write_image(root, "a b/é ü.jpg", 500)
    write_image(root, "with-dash/x.JPG", 501)
    write(root, ".localrepoignore", "skipme/\n")
    write_image(root, "skipme/s.jpg", 502)
    write(root, "l5/notes.txt", "not an image")
    write_image(root, "top.jpg", 503)
    write_image(root, "sub/deep/er/d.jpg", 504)
    write_image(root, "tags/red/t.jpg", 505)
    write(root, "tags/big/t.jpg", (root / "tags/red/t.jpg").read_bytes())  # a copy: two tags
    proc = run_repo(
        "-C", str(root), "task", "add", "tags", "--task", "tags", "--type", "multi_label"
    )
    assert proc.returncode == 0, proc.stderr


def empty(root: Path) -> None:
    """Folders but no image: nothing to hash, labels all the same."""
    (root / "cat").mkdir()
    write(root, "cat/readme.txt", "no images here")


Build = Callable[[Path], None]
TREES = [plain, copies, tagged, valueless, sidecar, many, odd, empty]


def _scan(root: Path, workers: int) -> ScanReport:
    conn = db(root)
    try:
        return Scanner(root, conn, workers=workers).scan()
    finally:
        conn.close()


def _journal_order(root: Path) -> list[tuple]:
    conn = db(root)
    try:
        return conn.execute(
            "SELECT kind, path, image_hash, task_id FROM journal ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _listed(root: Path, rep: ScanReport) -> list:
    conn = db(root)
    try:
        return [*cli_report.unlisted_additions(conn, rep), *rep.changes]
    finally:
        conn.close()


def _nothing_recorded(root: Path) -> None:
    conn = db(root)
    try:
        for table in ("file", "image", "journal", "image_label"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    finally:
        conn.close()


def _same_report(whole: ScanReport, parts: ScanReport) -> None:
    assert parts.files == whole.files
    assert parts.hashed == whole.hashed
    assert parts.invalid == whole.invalid
    assert sorted(parts.retry_later) == sorted(whole.retry_later)
    assert sorted(parts.leftovers) == sorted(whole.leftovers)
    key = lambda p: (p.kind, p.path or "", p.message, p.task_id)  # noqa: E731
    assert sorted(parts.problems, key=key) == sorted(whole.problems, key=key)
    assert parts.change_count() == whole.change_count()


@pytest.mark.parametrize("workers", [2, 1])
@pytest.mark.parametrize("build", TREES, ids=lambda b: b.__name__)
def test_a_first_scan_in_parts_records_what_the_whole_tree_scan_records(
    tmp_path: Path, monkeypatch, build: Build, workers: int
) -> None:
    whole_root, parts_root = new_repo(tmp_path / "whole"), new_repo(tmp_path / "parts")
    for root in (whole_root, parts_root):
        build(root)
    took: list[bool] = []
    real_run = firstscan.FirstScan.run

    def spy(self: firstscan.FirstScan) -> None:
        took.append(True)
        real_run(self)

    monkeypatch.setattr(firstscan.FirstScan, "run", spy)
    whole = _scan(whole_root, workers)
    assert took == []  # below MIN_FILES: the whole-tree path
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    parts = _scan(parts_root, workers)
    assert took == ([True] if build is not empty else [])
    if build is empty:
        return  # no image file: not a large first scan
    assert parts.unlisted_additions > 0 and not any(c.kind == "added" for c in parts.changes)
    _same_report(whole, parts)
    a, b = recorded(whole_root), recorded(parts_root)
    assert b == a
    assert _journal_order(parts_root) == _journal_order(whole_root)
    # `repo scan --json` lists the same changes, in the same order.
    assert _listed(parts_root, parts) == whole.changes
    # And the next scans, of an unchanged and then of a changed tree, agree too.
    for root in (whole_root, parts_root):
        assert _scan(root, workers).change_count() == 0
        first = sorted(root.glob("*/*.jpg"))[0]
        os.rename(first, root / "moved.jpg")
        assert _scan(root, workers).change_count() > 0
    assert recorded(parts_root) == recorded(whole_root)


def test_labels_the_label_pass_cannot_place_go_to_the_whole_layout_pass(
    tmp_path: Path, monkeypatch
) -> None:
    """When an image's label is not a label folder's, the image-by-image pass stops and
    the whole layout pass runs over the catalog as written (some label rows already in
    it); the labels, counts, journal and problems end as the whole-tree scan's."""
    whole_root, parts_root = new_repo(tmp_path / "whole"), new_repo(tmp_path / "parts")
    for root in (whole_root, parts_root):
        copies(root)
    _scan(whole_root, 2)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    stopped: list[object] = []
    real_label_images = firstlabels.label_images

    def without_one_label(conn, bindings, folder_labels):  # type: ignore[no-untyped-def]
        # As if one label folder had not been seen: its images cannot be placed here.
        fewer = {t: set(names) - {"cat"} for t, names in folder_labels.items()}
        got = real_label_images(conn, bindings, fewer)
        stopped.append(got)
        return got

    monkeypatch.setattr(firstlabels, "label_images", without_one_label)
    _scan(parts_root, 2)
    assert stopped == [None]
    assert labels_by_path(parts_root) == labels_by_path(whole_root)
    assert task_labels(parts_root) == task_labels(whole_root)
    a, b = recorded(whole_root), recorded(parts_root)
    for table in ("journal", "scan_problem", "meta", "file"):
        assert b[table] == a[table], table
    assert _journal_order(parts_root) == _journal_order(whole_root)


def test_the_count_is_of_image_names_outside_the_state_folder(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    for i in range(5):
        write_image(root, f"a/{i}.jpg", i)
    write(root, "a/notes.txt", "x")
    write(root, ".localrepo/x.jpg", b"state: not counted")
    write_image(root, "b/c/5.PNG", 5, fmt="PNG")
    os.symlink(root / "a", root / "linked")  # not followed
    assert firstscan.count_image_files(str(root)) == 6


def test_progress_counts_to_the_files_counted_before_the_walk(tmp_path: Path, monkeypatch) -> None:
    root = new_repo(tmp_path / "r")
    for i in range(700):
        write_image(root, f"l{i % 3}/{i}.jpg", i % 50)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    seen: list[tuple[int, int]] = []
    conn = db(root)
    try:
        Scanner(root, conn, workers=2, progress=lambda d, t: seen.append((d, t))).scan()
    finally:
        conn.close()
    assert seen and all(t == 700 for _d, t in seen)
    assert [d for d, _t in seen] == sorted(d for d, _t in seen) and seen[-1][0] == 700


def test_the_walk_waits_for_the_pool(tmp_path: Path, monkeypatch) -> None:
    """No more than IN_FLIGHT batches per worker are ever waiting in the pool: a tree
    much larger than that is never listed ahead of the hashing."""
    root = new_repo(tmp_path / "r")
    for i in range(1200):
        write_image(root, f"l{i % 3}/{i}.jpg", i % 40)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    monkeypatch.setattr(firstscan, "BIG_BATCH", 16)
    monkeypatch.setattr(firstscan, "IN_FLIGHT", 2)
    most = [0]
    real_feed = firstscan.FirstScan._feed

    def feed(self, walked, new_paths):  # type: ignore[no-untyped-def]
        real_feed(self, walked, new_paths)
        most[0] = max(most[0], len(self._futures))

    monkeypatch.setattr(firstscan.FirstScan, "_feed", feed)
    rep = _scan(root, workers=2)
    assert rep.files == 1200 and rep.unlisted_additions == 1200
    assert 0 < most[0] <= 2 * 2


def test_a_worker_that_fails_mid_scan_leaves_nothing_recorded(tmp_path: Path, monkeypatch) -> None:
    """The scan is one transaction: a batch that fails rolls back every row written
    before it, and the next scan starts again from an empty catalog."""
    root = new_repo(tmp_path / "r")
    for i in range(600):
        write_image(root, f"l{i % 4}/{i}.jpg", i)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    monkeypatch.setattr(firstscan, "BIG_BATCH", 32)
    calls = [0]
    real_write = firstscan.FirstScan._write

    def write_then_fail(self, batch):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 5:
            raise OSError("the disk went away")
        real_write(self, batch)

    monkeypatch.setattr(firstscan.FirstScan, "_write", write_then_fail)
    with pytest.raises(OSError, match="went away"):
        _scan(root, workers=2)
    _nothing_recorded(root)
    monkeypatch.setattr(firstscan.FirstScan, "_write", real_write)
    rep = _scan(root, workers=2)
    assert rep.unlisted_additions == 600


def test_scan_json_lists_a_large_first_scans_additions(tmp_path: Path, monkeypatch, capsys) -> None:
    """`repo scan --json` reads the additions back from the journal: every file, with
    its task and hash, in path order; the human summary counts them."""
    roots = [new_repo(tmp_path / "r"), new_repo(tmp_path / "s")]
    for root in roots:
        for i in range(30):
            write_image(root, f"l{i % 3}/{i:02d}.jpg", i)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    code, out, _err = repo_main(["-C", str(roots[0]), "scan", "--json"], capsys)
    assert code == 0
    changes = json.loads(out)["changes"]
    assert [c["path"] for c in changes] == sorted(f"l{i % 3}/{i:02d}.jpg" for i in range(30))
    assert {c["kind"] for c in changes} == {"added"}
    assert all(len(c["hash"]) == 32 and c["task_id"] == 1 for c in changes)
    code, out, _err = repo_main(["-C", str(roots[1]), "scan"], capsys)
    assert code == 0 and "30 added" in out, out


def test_a_scan_killed_half_way_leaves_nothing_and_the_next_one_records_it_all(
    tmp_path: Path, monkeypatch
) -> None:
    """kill -9 in the middle of a large first scan, after some batches' rows were
    written: the catalog holds none of them (one transaction), no lock or journal entry
    is left behind, and the next scan records every file, its labels and its journal."""
    root = new_repo(tmp_path / "r")
    for i in range(600):
        write_image(root, f"l{i % 4}/{i}.jpg", i)
    monkeypatch.setattr(firstscan, "MIN_FILES", 1)
    monkeypatch.setattr(firstscan, "BIG_BATCH", 32)
    pid = os.fork()
    if pid == 0:  # the scan, killed by itself once five batches are written
        calls = [0]
        real_write = firstscan.FirstScan._write

        def write_then_die(self, batch):  # type: ignore[no-untyped-def]
            real_write(self, batch)
            calls[0] += 1
            if calls[0] == 5:
                os.kill(os.getpid(), signal.SIGKILL)

        firstscan.FirstScan._write = write_then_die  # type: ignore[method-assign]
        try:
            # Hashed in this process: what is asserted here is the transaction's (a
            # pool's forked workers outlive a scan killed with signal 9).
            _scan(root, workers=1)
        finally:
            os._exit(1)  # not killed: the test fails on the exit status below
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    _nothing_recorded(root)
    rep = _scan(root, workers=2)
    assert rep.files == 600 and rep.unlisted_additions == 600
    assert len(labels_by_path(root)) == 600
    assert _journal_order(root) == sorted(_journal_order(root), key=lambda r: r[1])
