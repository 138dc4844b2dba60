"""The split walk (scan/splitwalk.py): a forked helper walks part of the tree.

What it finds must be what one walk finds, whatever the split, whether the helper
succeeds or fails; and a scan that uses it must record what a scan without it records."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support.treebuilder import db, new_repo, run_repo, write, write_image

from localrepo.scan import splitwalk
from localrepo.scan.scanner import Scanner
from localrepo.scan.walk import WalkResult, walk

from .test_scan_scope import dump


def build(root: Path) -> None:
    """Label folders of different sizes, nested ignore files, sidecars, a hard link,
    symlinks, a badly named file, an interrupted sync's temp file and root files."""
    for n, label in enumerate(["dog", "cat", "bird", "fish", "ant"]):
        for i in range(2 + 3 * n):
            write_image(root, f"{label}/{i}.jpg", 100 * n + i)
    write_image(root, "fish/deep/deeper/x.jpg", 1)
    write_image(root, "root.jpg", 2)
    write(root, ".localrepoignore", "*.tmp.jpg\nskipme/\n")
    write(root, "cat/.localrepoignore", "secret*\n")
    write_image(root, "cat/secret1.jpg", 3)
    write_image(root, "dog/a.tmp.jpg", 4)
    write_image(root, "skipme/a.jpg", 5)
    write_image(root, "tags/red/t.jpg", 6)
    (root / "tags/big").mkdir(parents=True)
    os.link(root / "tags/red/t.jpg", root / "tags/big/t.jpg")
    write(root, "reg/metadata.jsonl", '{"file_name": "a/r.jpg", "value": 3}\n')
    write_image(root, "reg/a/r.jpg", 7)
    os.symlink(root / "dog/0.jpg", root / "bird/link.jpg")
    os.symlink(root / "fish", root / "ant/fishlink")
    write(root, "bird/.x.jpg.localrepo-tmp", b"half")
    (root / os.fsdecode(b"ant/bad\xff.jpg")).write_bytes(b"x")
    (root / "empty").mkdir()


def same(a: WalkResult, b: WalkResult) -> None:
    assert a.images == b.images
    assert a.sidecars == b.sidecars
    assert a.ignore_files == b.ignore_files
    assert a.ignore_stats == b.ignore_stats
    assert a.skipped == b.skipped
    assert a.folders == b.folders
    assert sorted(a.leftovers) == sorted(b.leftovers)


def split(root: Path, weights: dict[str, int]) -> WalkResult:
    sw = splitwalk.SplitWalk(str(root), weights)
    try:
        assert sw._pid, "no helper was forked"
        return sw.result()
    finally:
        sw.close()


@pytest.mark.parametrize(
    "weights",
    [{}, {"fish": 1000}, {"dog": 5, "cat": 5, "bird": 5, "fish": 5, "ant": 5}, {"zzz": 9}],
    ids=["unknown", "one-heavy", "even", "stale"],
)
def test_a_split_walk_finds_what_one_walk_finds(tmp_path: Path, weights) -> None:
    root = tmp_path / "t"
    root.mkdir()
    build(root)
    whole = walk(str(root))
    assert "bird/link.jpg" in whole.skipped and whole.leftovers  # the odd cases are there
    same(split(root, weights), whole)


def nested(root: Path) -> None:
    """Two task folders at the top, their labels one level down; the bigger task also
    has files of its own, an ignore file and a deeper folder."""
    for t, (task, labels) in enumerate({"pets": 5, "tags": 2}.items()):
        for n in range(labels):
            for i in range(3 + n):
                write_image(root, f"{task}/l{n}/{i}.jpg", 1000 * t + 10 * n + i)
    write_image(root, "pets/own.jpg", 5000)
    write(root, "pets/.localrepoignore", "l4/\n")
    write_image(root, "pets/l0/deep/er/x.jpg", 5001)
    write_image(root, "top.jpg", 5002)


@pytest.mark.parametrize("tops", [1, 2, 3])
def test_a_few_top_level_folders_are_shared_one_level_down(tmp_path: Path, tops: int) -> None:
    root = tmp_path / "t"
    root.mkdir()
    nested(root)
    for extra in range(tops - 2):
        write_image(root, f"more{extra}/a/b.jpg", 6000 + extra)
    if tops == 1:
        shutil.rmtree(root / "tags")
    whole = walk(str(root))
    weights = splitwalk.folder_weights(whole.images)
    assert weights[""] == len(whole.images) and weights["pets"] > weights["pets/l0"] > 0
    sw = splitwalk.SplitWalk(str(root), weights)
    try:
        assert sw._pid, "no helper was forked"
        assert all("/" in f for f in sw._theirs + sw._ours)  # second-level folders
        same(sw.result(), whole)
    finally:
        sw.close()
    assert "pets/l4" not in whole.folders  # the ignore file one level down held


def test_folder_weights_count_files_one_and_two_levels_deep() -> None:
    paths = ["a.jpg", "x/b.jpg", "x/y/c.jpg", "x/y/z/d.jpg", "w/v/e.jpg"]
    assert splitwalk.folder_weights(paths) == {
        "": 5,
        "w": 1,
        "w/v": 1,
        "x": 3,
        "x/y": 2,
    }


def test_a_failed_helper_leaves_its_share_to_this_process(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "t"
    root.mkdir()
    build(root)
    parent = os.getpid()
    real = splitwalk._walk_all

    def fails_in_the_helper(root_: str, folders):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            raise MemoryError("the helper ran out of memory")
        return real(root_, folders)

    monkeypatch.setattr(splitwalk, "_walk_all", fails_in_the_helper)
    same(split(root, {}), walk(str(root)))


def test_a_helper_whose_result_is_never_asked_for_is_reaped(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    for i in range(300):  # more than a pipe holds: the helper blocks writing its part
        write_image(root, f"l{i % 5}/{i}.jpg", i)
    sw = splitwalk.SplitWalk(str(root), {})
    pid = sw._pid
    assert pid
    sw.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # gone: no zombie left behind


def recorded(root: Path) -> dict[str, list[tuple]]:
    """The catalog, without what differs between two copies of a tree or two orders of
    hashing: inodes, mtimes, image ids (handed out as results arrive; hashes instead)."""
    out = dump(root)
    hash_of = {r[0]: r[1] for r in out["image"]}
    out["file"] = sorted((r[0], hash_of.get(r[1]), r[4], r[6]) for r in out["file"])
    out["image"] = sorted(r[1:] for r in out["image"])
    out["image_label"] = sorted((*r[:2], hash_of[r[2]], *r[3:]) for r in out["image_label"])
    out["aux_file"] = [r[:2] for r in out["aux_file"]]
    return out


def make_repo(root: Path) -> Path:
    root = new_repo(root)
    build(root)
    for sub, name, kind in (("tags", "tags", "multi_label"), ("reg", "reg", "regression")):
        proc = run_repo("-C", str(root), "task", "add", sub, "--task", name, "--type", kind)
        assert proc.returncode == 0, proc.stderr
    return root


def record_forks(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Split every walk (whatever the tree's size) and record each helper's pid."""
    forks: list[int] = []

    class Recorded(splitwalk.SplitWalk):
        def __init__(self, root: str, weights, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(root, weights, *args, **kwargs)
            forks.append(self._pid)

    monkeypatch.setattr(splitwalk, "MIN_FILES", 1)
    monkeypatch.setattr(splitwalk, "SplitWalk", Recorded)
    return forks


def test_scans_with_a_split_walk_record_what_scans_without_it_record(
    tmp_path: Path, monkeypatch
) -> None:
    roots = [make_repo(tmp_path / "serial"), make_repo(tmp_path / "split")]
    forks = record_forks(monkeypatch)

    def scan_both(*, expect_split: bool) -> None:
        forks.clear()
        for root, may_fork in zip(roots, (False, True), strict=True):
            monkeypatch.setattr(splitwalk, "can_split", lambda m=may_fork: m)
            conn = db(root)
            try:
                Scanner(root, conn, workers=2).scan()
            finally:
                conn.close()
        assert bool(forks and all(forks)) == expect_split
        assert recorded(roots[0]) == recorded(roots[1])

    scan_both(expect_split=False)  # a first scan never splits: it hashes as it walks

    def change(root: Path) -> None:
        os.rename(root / "dog/0.jpg", root / "cat/0.jpg")  # a move
        (root / "fish/1.jpg").unlink()  # a delete
        write_image(root, "fish/new.jpg", 999)  # an addition
        write_image(root, "bird/0.jpg", 998)  # new bytes at a known path
        shutil.move(root / "ant", root / "wasp")  # a renamed label folder
        write(root, "reg/metadata.jsonl", '{"file_name": "a/r.jpg", "value": 4}\n')

    for root in roots:
        change(root)
    scan_both(expect_split=True)
    scan_both(expect_split=True)  # and a no-change scan after it
    conn = db(roots[1])
    try:
        journal = {r[0] for r in conn.execute("SELECT kind FROM journal")}
    finally:
        conn.close()
    assert {"moved", "deleted", "added", "modified", "label_renamed"} <= journal


def test_a_catalog_without_file_rows_is_hashed_in_full_after_a_split_walk(
    tmp_path: Path, monkeypatch
) -> None:
    """A first scan whose every file changed while it was hashed records no file rows,
    yet it records the per-folder counts that let the next scan split its walk. That
    next scan is again a first scan (nothing cached) and must still hash every file:
    the early hashing that a first scan feeds from its own walk gets nothing from a
    split walk."""
    roots = [make_repo(tmp_path / "serial"), make_repo(tmp_path / "split")]
    forks = record_forks(monkeypatch)
    monkeypatch.setattr(splitwalk, "can_split", lambda: True)
    conn = db(roots[1])
    try:  # what such a first scan leaves: counts per folder, no file rows
        conn.execute(
            "INSERT INTO repo_meta(key, value) VALUES ('files_per_folder', ?)",
            (json.dumps({"": 50, "cat": 10, "dog": 10, "fish": 10, "bird": 10}),),
        )
        assert conn.execute("SELECT COUNT(*) FROM file").fetchone()[0] == 0
        rep = Scanner(roots[1], conn, workers=2).scan()
    finally:
        conn.close()
    assert forks and all(forks)  # the walk was split
    assert rep.hashed == rep.files > 0
    monkeypatch.setattr(splitwalk, "can_split", lambda: False)
    conn = db(roots[0])
    try:
        Scanner(roots[0], conn, workers=2).scan()
    finally:
        conn.close()
    assert recorded(roots[1]) == recorded(roots[0])
