"""Scoped scans (the watcher's rescan of touched folders) record what a full scan records.

Each case makes edits on a real tree, keeps a copy of the catalog, runs the scoped scan
the watcher would run for those edits, then restores the copy and runs a full scan on
the very same disk: the two catalogs must agree (files, images, labels in every state,
label folders, journal, problems, sidecar rows, counts). A spy on the walk checks that
the scoped scan listed only the touched folders (and the task roots' first level).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support.treebuilder import db, image_labels, new_repo, run_repo, scan, write, write_image

from localrepo.catalog.db import catalog_path
from localrepo.scan import statpass
from localrepo.scan.scanner import ScanReport
from localrepo.watch.coalesce import touched_folders

# Meta keys that hold the moment of a scan, not what it found.
MOMENTS = ("aux_ns", "last_scan_ns")


def dump(root: Path) -> dict[str, list[tuple]]:
    conn = db(root)
    try:
        q = {
            # Not ctime: a new hard link changes the ctime of the inode's other names too,
            # with no event for them; the next full scan re-reads them (same bytes).
            "file": "SELECT path, image_id, dev, inode, size, mtime_ns, reason FROM file",
            "image": "SELECT id, hash, size, width, height, format FROM image",
            "image_label": "SELECT state, task_id, image_id, label_id, value FROM image_label",
            "task_label": "SELECT state, task_id, label_id FROM task_label",
            "label": "SELECT id, name, type FROM label",
            "journal": "SELECT kind, status, task_id, path, old_path, image_hash, detail"
            " FROM journal",
            "scan_problem": "SELECT task_id, path, kind, message FROM scan_problem",
            "aux_file": "SELECT path, size, mtime_ns, inode FROM aux_file",
            "meta": "SELECT key, value FROM repo_meta WHERE key NOT IN (?, ?)",
        }
        return {
            name: sorted(conn.execute(sql, MOMENTS if name == "meta" else ()), key=repr)
            for name, sql in q.items()
        }
    finally:
        conn.close()


def copy_catalog(src: Path, dst: Path) -> None:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


@pytest.fixture
def walks(monkeypatch) -> list[tuple[str, bool]]:
    """(start, recursive) of every walk the scanner makes."""
    seen: list[tuple[str, bool]] = []
    real = statpass.walk

    def spy(root, rules=None, start="", on_folder=None, *, recursive=True):
        seen.append((start, recursive))
        return real(root, rules, start, on_folder, recursive=recursive)

    monkeypatch.setattr(statpass, "walk", spy)
    return seen


def scoped_equals_full(
    root: Path, tmp_path: Path, paths: list[str], dirs: list[str], walks: list
) -> tuple[ScanReport, ScanReport]:
    """Scan scoped as the watcher would for `paths`, then full from the same catalog."""
    saved = tmp_path / "saved.db"
    copy_catalog(catalog_path(root), saved)
    walks.clear()
    scope = touched_folders(paths, dirs)
    scoped = scan(root, scope=scope)
    assert scoped.scope is not None, "a scoped scan ran as a full one"
    recursive = sorted(start for start, rec in walks if rec)
    assert recursive == sorted(f for f in scoped.scope if (root / f).is_dir())
    after_scoped = dump(root)
    copy_catalog(saved, catalog_path(root))
    full = scan(root)
    assert dump(root) == after_scoped
    assert sorted((c.kind, c.path, c.old_path) for c in scoped.changes) == sorted(
        (c.kind, c.path, c.old_path) for c in full.changes
    )
    assert scoped.files == full.files
    return scoped, full


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Three tasks: multi_class at the root, multi_label under tags/, regression under reg/."""
    root = new_repo(tmp_path / "r")
    for i, rel in enumerate(
        ["dog/a.jpg", "dog/b.jpg", "cat/c.jpg", "cat/d.jpg", "bird/e.jpg", "bird/e2.jpg"]
    ):
        write_image(root, rel, i + 1)
    for i in range(20):  # untouched bulk: never walked by a scoped scan
        write_image(root, f"fish/deep/f{i}.jpg", 100 + i)
    write_image(root, "tags/red/x.jpg", 50)
    (root / "tags/big").mkdir(parents=True)
    os.link(root / "tags/red/x.jpg", root / "tags/big/x.jpg")  # one inode, two tags
    write_image(root, "tags/round/y.jpg", 51)
    write_image(root, "reg/young/r1.jpg", 60)
    write_image(root, "reg/old/r2.jpg", 61)
    write(
        root,
        "reg/metadata.jsonl",
        '{"file_name": "young/r1.jpg", "value": 3}\n{"file_name": "old/r2.jpg", "value": 70}\n',
    )
    for sub, name, kind in (("tags", "tags", "multi_label"), ("reg", "reg", "regression")):
        proc = run_repo("-C", str(root), "task", "add", sub, "--task", name, "--type", kind)
        assert proc.returncode == 0, proc.stderr
    scan(root)
    return root


def test_moves_deletes_a_new_and_a_renamed_label_folder(tree: Path, tmp_path: Path, walks):
    root = tree
    os.rename(root / "dog/a.jpg", root / "cat/a.jpg")  # a move across folders
    (root / "cat/d.jpg").unlink()  # a delete
    write_image(root, "horse/h.jpg", 7)  # a new label folder
    os.rename(root / "bird", root / "birds")  # a renamed label folder
    scoped, _full = scoped_equals_full(
        root,
        tmp_path,
        ["dog/a.jpg", "cat/a.jpg", "cat/d.jpg", "horse", "bird", "birds"],
        ["horse", "bird", "birds"],
        walks,
    )
    assert scoped.scope == ["bird", "birds", "cat", "dog", "horse"]
    kinds = sorted(c.kind for c in scoped.changes)
    assert kinds == ["added", "deleted", "label_renamed", "moved"]
    assert not any(start.startswith(("fish", "tags", "reg")) for start, rec in walks if rec)


def test_a_hard_linked_copy_keeps_the_other_copies_labels(tree: Path, tmp_path: Path, walks):
    root = tree
    (root / "tags/shiny").mkdir()
    os.link(root / "tags/red/x.jpg", root / "tags/shiny/x.jpg")
    (root / "tags/round/y.jpg").unlink()
    scoped, _ = scoped_equals_full(
        root, tmp_path, ["tags/shiny", "tags/round/y.jpg"], ["tags/shiny"], walks
    )
    assert scoped.scope == ["tags/round", "tags/shiny"]
    [labels] = [v for (task, _h), v in image_labels(root).items() if task == "tags"]
    assert labels == {"red": None, "big": None, "shiny": None}


def test_a_sidecar_edit_rescans_what_it_governs(tree: Path, tmp_path: Path, walks):
    root = tree
    write(
        root,
        "reg/metadata.jsonl",
        '{"file_name": "young/r1.jpg", "value": 4.5}\n{"file_name": "old/r2.jpg", "value": 70}\n',
        old=False,
    )
    scoped, _ = scoped_equals_full(root, tmp_path, ["reg/metadata.jsonl"], [], walks)
    assert scoped.scope == ["reg"]
    assert [c.kind for c in scoped.changes] == ["value_changed"]


def test_an_ignore_file_governs_its_subtree(tree: Path, tmp_path: Path, walks):
    root = tree
    write(root, "fish/.localrepoignore", "deep/f1*.jpg\n", old=False)
    scoped, _ = scoped_equals_full(root, tmp_path, ["fish/.localrepoignore"], [], walks)
    assert scoped.scope == ["fish"]
    assert sum(c.kind == "deleted" for c in scoped.changes) == 11  # f1, f10..f19


def test_an_empty_scope_reads_nothing_and_the_root_is_a_full_scan(tree: Path, walks):
    write_image(tree, "dog/new.jpg", 8)
    nothing = scan(tree, scope=[])
    assert nothing.scope == [] and nothing.changes == [] and walks == []
    whole = scan(tree, scope=["dog", ""])
    assert whole.scope is None and [c.kind for c in whole.changes] == ["added"]
