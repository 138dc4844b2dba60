"""The scanner on real trees, the change journal: each change is exactly one entry
(added, modified, moved, deleted, label renamed, value changed); no change, no entry."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from support.treebuilder import (
    files,
    image_hashes,
    image_labels,
    journal,
    journal_count,
    kinds,
    new_repo,
    repo_main,
    scan,
    task_labels,
    write,
    write_image,
)

from localrepo.catalog.db import catalog_path

# --------------------------------------------------------------------------- the journal


@pytest.fixture
def dogs_and_cats(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = new_repo(tmp_path / "r")
    h = {
        "dog/a.jpg": write_image(root, "dog/a.jpg", 1),
        "dog/b.jpg": write_image(root, "dog/b.jpg", 2),
        "cat/c.jpg": write_image(root, "cat/c.jpg", 3),
        "cat/d.jpg": write_image(root, "cat/d.jpg", 4),
    }
    rep = scan(root)
    assert kinds(rep) == sorted(("added", p, None) for p in h)
    assert journal(root) == sorted(("added", p, None) for p in h)
    return root, h


def _new_entries(root: Path, before: int) -> list[tuple[str, str | None, str | None]]:
    return journal(root)[before:]


def test_no_change_scan_hashes_nothing_and_journals_nothing(dogs_and_cats) -> None:
    root, _h = dogs_and_cats
    n = journal_count(root)
    conn = sqlite3.connect(catalog_path(root))
    before = conn.execute("SELECT * FROM file ORDER BY path").fetchall()
    conn.close()
    for _ in range(2):
        rep = scan(root)
        assert rep.hashed == 0
        assert rep.changes == []
        assert journal_count(root) == n
    conn = sqlite3.connect(catalog_path(root))
    assert conn.execute("SELECT * FROM file ORDER BY path").fetchall() == before
    conn.close()


def test_added_and_modified(dogs_and_cats) -> None:
    root, h = dogs_and_cats
    n = journal_count(root)
    h_new = write_image(root, "cat/e.jpg", 5)
    h_mod = write_image(root, "dog/a.jpg", 11)  # new bytes at a known path
    rep = scan(root)
    assert kinds(rep) == [("added", "cat/e.jpg", None), ("modified", "dog/a.jpg", None)]
    assert _new_entries(root, n) == sorted(kinds(rep))
    mod = next(c for c in rep.changes if c.kind == "modified")
    assert (mod.hash, mod.old_hash) == (h_mod, h["dog/a.jpg"])
    labels = image_labels(root)
    assert labels[("t", h_mod)] == {"dog": None}
    assert labels[("t", h_new)] == {"cat": None}
    assert ("t", h["dog/a.jpg"]) not in labels  # the old content lost its label


def test_a_move_between_label_folders_is_one_moved_entry(dogs_and_cats) -> None:
    root, h = dogs_and_cats
    n = journal_count(root)
    os.rename(root / "dog/a.jpg", root / "cat/a.jpg")
    rep = scan(root)
    assert kinds(rep) == [("moved", "cat/a.jpg", "dog/a.jpg")]
    assert _new_entries(root, n) == [("moved", "cat/a.jpg", "dog/a.jpg")]
    assert rep.changes[0].hash == h["dog/a.jpg"]
    assert image_labels(root)[("t", h["dog/a.jpg"])] == {"cat": None}  # the label changed
    assert len(image_hashes(root)) == 4  # never a delete plus an add


def test_a_deleted_file_is_one_deleted_entry(dogs_and_cats) -> None:
    root, h = dogs_and_cats
    n = journal_count(root)
    (root / "cat/d.jpg").unlink()
    rep = scan(root)
    assert kinds(rep) == [("deleted", None, "cat/d.jpg")]
    assert _new_entries(root, n) == [("deleted", None, "cat/d.jpg")]
    assert "cat/d.jpg" not in files(root)
    assert ("t", h["cat/d.jpg"]) not in image_labels(root)


def test_a_renamed_label_folder_is_one_label_renamed_entry(dogs_and_cats, capsys) -> None:
    root, h = dogs_and_cats
    n = journal_count(root)
    os.rename(root / "dog", root / "hound")
    rep = scan(root)
    assert kinds(rep) == [("label_renamed", "hound", "dog")]
    assert _new_entries(root, n) == [("label_renamed", "hound", "dog")]
    labels = image_labels(root)
    assert labels[("t", h["dog/a.jpg"])] == {"hound": None}
    assert labels[("t", h["dog/b.jpg"])] == {"hound": None}
    assert task_labels(root)["t"] == {("hound", "category"), ("cat", "category")}
    code, out, _ = repo_main(["-C", str(root), "log", "--json", "--limit", "1"], capsys)
    assert code == 0
    (entry,) = json.loads(out)
    assert (entry["kind"], entry["old_path"], entry["path"]) == ("label_renamed", "dog", "hound")


def test_an_edited_sidecar_value_is_one_value_changed_entry(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r", task_type="regression")
    ha = write_image(root, "age/a.jpg", 1)
    hb = write_image(root, "age/b.jpg", 2)
    write(
        root,
        "age/metadata.jsonl",
        '{"file_name": "a.jpg", "value": 3.5}\n{"file_name": "b.jpg", "value": 10}\n',
    )
    scan(root)
    n = journal_count(root)
    write(
        root,
        "age/metadata.jsonl",
        '{"file_name": "a.jpg", "value": 4.25}\n{"file_name": "b.jpg", "value": 10}\n',
    )
    rep = scan(root)
    assert [(c.kind, c.hash) for c in rep.changes] == [("value_changed", ha)]
    assert rep.changes[0].detail == {"age": [3.5, 4.25]}
    assert [k for k, _p, _o in _new_entries(root, n)] == ["value_changed"]
    assert image_labels(root) == {("t", ha): {"age": 4.25}, ("t", hb): {"age": 10.0}}
    # and an unchanged sidecar re-scanned journals nothing
    m = journal_count(root)
    assert scan(root).changes == [] and journal_count(root) == m


def test_a_move_out_and_back_between_scans_gives_no_entry(dogs_and_cats, tmp_path) -> None:
    root, _h = dogs_and_cats
    n = journal_count(root)
    outside = tmp_path / "elsewhere.jpg"
    os.rename(root / "dog/a.jpg", outside)
    os.rename(outside, root / "dog/a.jpg")
    os.rename(root / "cat", tmp_path / "cat-away")
    os.rename(tmp_path / "cat-away", root / "cat")
    rep = scan(root)
    assert rep.changes == []
    assert journal_count(root) == n


def test_two_images_swapping_names_are_two_moves(dogs_and_cats) -> None:
    root, h = dogs_and_cats
    n = journal_count(root)
    os.rename(root / "dog/a.jpg", root / "swap.tmp")
    os.rename(root / "cat/c.jpg", root / "dog/a.jpg")
    os.rename(root / "swap.tmp", root / "cat/c.jpg")
    rep = scan(root)
    assert kinds(rep) == [
        ("moved", "cat/c.jpg", "dog/a.jpg"),
        ("moved", "dog/a.jpg", "cat/c.jpg"),
    ]
    assert sorted(_new_entries(root, n)) == kinds(rep)
    labels = image_labels(root)
    assert labels[("t", h["dog/a.jpg"])] == {"cat": None}
    assert labels[("t", h["cat/c.jpg"])] == {"dog": None}
    assert len(image_hashes(root)) == 4


def test_dry_run_records_nothing(dogs_and_cats) -> None:
    root, _h = dogs_and_cats
    n = journal_count(root)
    os.rename(root / "dog/a.jpg", root / "cat/a.jpg")
    write_image(root, "cat/new.jpg", 9)
    conn = sqlite3.connect(catalog_path(root))
    before = conn.execute("SELECT path, image_id, cached_ns FROM file ORDER BY path").fetchall()
    conn.close()
    rep = scan(root, dry_run=True)
    assert kinds(rep) == [("added", "cat/new.jpg", None), ("moved", "cat/a.jpg", "dog/a.jpg")]
    assert journal_count(root) == n
    conn = sqlite3.connect(catalog_path(root))
    after = conn.execute("SELECT path, image_id, cached_ns FROM file ORDER BY path").fetchall()
    conn.close()
    assert after == before
    assert kinds(scan(root)) == kinds(rep)  # the real scan then records the same
