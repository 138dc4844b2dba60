"""The scanner on real trees, the layout rules: label folders for the three task types,
copies and hard links, sidecars, sub-tasks, and the per-label counts `repo status` shows."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

from support.treebuilder import (
    files,
    image_hashes,
    image_labels,
    img,
    journal_count,
    kinds,
    labels_by_path,
    new_repo,
    repo_main,
    run_repo,
    scan,
    task_labels,
    write,
    write_image,
)

from .scanhelp import status_json

# --------------------------------------------------------------------------- layout rules


def test_multi_class_layout_end_to_end(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    h = {
        "dog/a.jpg": write_image(root, "dog/a.jpg", 1),
        "dog/deeper/still/b.png": write_image(root, "dog/deeper/still/b.png", 2, fmt="PNG"),
        "cat/c.jpg": write_image(root, "cat/c.jpg", 3),
        "root.jpg": write_image(root, "root.jpg", 4),
        "_unlabeled/u.jpg": write_image(root, "_unlabeled/u.jpg", 5),
        "_drafts/v.jpg": write_image(root, "_drafts/v.jpg", 6),
    }
    write_image(root, ".hidden/w.jpg", 7)  # dot folders are ignored outright
    (root / "bird").mkdir()  # an empty label folder is still a label of the task

    rep = scan(root)
    assert rep.invalid == {}
    assert {p: hh for p, (hh, _r) in files(root).items()} == h
    assert labels_by_path(root) == {
        "dog/a.jpg": {"dog": None},
        "dog/deeper/still/b.png": {"dog": None},
        "cat/c.jpg": {"cat": None},
    }
    assert task_labels(root) == {
        "t": {("dog", "category"), ("cat", "category"), ("bird", "category")}
    }
    assert kinds(rep) == sorted(("added", p, None) for p in h)

    st = status_json(root, capsys)
    (task,) = st["tasks"]
    assert task["images"] == 6
    assert task["unlabelled"] == 3
    assert task["labels"] == {"bird": 0, "cat": 1, "dog": 2}


def test_multi_label_copies_and_hard_links_are_one_image_with_every_tag(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r", task_type="multi_label")
    hx = write_image(root, "red/x.jpg", 1)
    (root / "round").mkdir()
    shutil.copy2(root / "red/x.jpg", root / "round/x.jpg")  # a copy
    (root / "big").mkdir()
    os.link(root / "red/x.jpg", root / "big/x-link.jpg")  # a hard link
    hy = write_image(root, "round/y.jpg", 2)

    scan(root)
    assert image_labels(root) == {
        ("t", hx): {"red": None, "round": None, "big": None},
        ("t", hy): {"round": None},
    }
    assert len(image_hashes(root)) == 2  # identical bytes are one image
    assert task_labels(root)["t"] == {("red", "tag"), ("round", "tag"), ("big", "tag")}

    (root / "round/x.jpg").unlink()  # removing one copy removes that tag
    rep = scan(root)
    assert image_labels(root) == {
        ("t", hx): {"red": None, "big": None},
        ("t", hy): {"round": None},
    }
    assert any(c.old_path == "round/x.jpg" or c.path == "round/x.jpg" for c in rep.changes)

    os.unlink(root / "big/x-link.jpg")  # and removing the hard link removes its tag
    scan(root)
    assert image_labels(root)[("t", hx)] == {"red": None}


def test_multi_class_copies_in_two_label_folders_are_ambiguous(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    hx = write_image(root, "dog/x.jpg", 1)
    write(root, "cat/x.jpg", img(1))
    rep = scan(root)
    assert ("t", hx) not in image_labels(root)
    assert any("ambiguous" in p.message for p in rep.problems)


def test_regression_values_come_from_jsonl_and_csv_sidecars(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r", task_type="regression")
    ha = write_image(root, "young/a.jpg", 1)
    hb = write_image(root, "old/b.jpg", 2)
    hc = write_image(root, "old/c.jpg", 3)  # no value anywhere: reported, not linked
    hd = write_image(root, "young/sub/d.jpg", 4)
    write(
        root,
        "young/metadata.jsonl",
        '{"file_name": "a.jpg", "value": 3.5}\n'
        '{"file_name": "sub/d.jpg", "value": 7, "source": "cam2"}\n',
    )
    write(root, "metadata.csv", "file_name,value\nold/b.jpg,70.25\n")

    rep = scan(root)
    assert image_labels(root) == {
        ("t", ha): {"young": 3.5},
        ("t", hb): {"old": 70.25},
        ("t", hd): {"young": 7.0},
    }
    assert ("t", hc) not in image_labels(root)
    missing = [p for p in rep.problems if p.path == "old/c.jpg"]
    assert missing and "no value" in missing[0].message
    assert task_labels(root)["t"] == {("young", "value"), ("old", "value")}
    # the image is still catalogued, and `status` shows the problem
    assert files(root)["old/c.jpg"] == (hc, None)
    st = status_json(root, capsys)
    assert any(p["path"] == "old/c.jpg" and "no value" in p["message"] for p in st["problems"])


def test_task_add_binds_a_subfolder_to_its_own_task(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    hd = write_image(root, "dog/a.jpg", 1)
    hr = write_image(root, "sub/red/b.jpg", 2)
    hs = write_image(root, "sub/shiny/b.jpg", 2)
    hu = write_image(root, "sub/c.jpg", 3)
    assert hr == hs

    proc = run_repo("-C", str(root), "task", "add", "sub", "--task", "t2", "--type", "multi_label")
    assert proc.returncode == 0, proc.stderr
    code, out, _ = repo_main(["-C", str(root), "task", "list", "--json"], capsys)
    assert code == 0
    listed = {t["name"]: (t["type"], t["root"]) for t in json.loads(out)}
    assert listed == {"t": ("multi_class", ""), "t2": ("multi_label", "sub")}

    scan(root)
    assert image_labels(root) == {
        ("t", hd): {"dog": None},
        ("t2", hr): {"red": None, "shiny": None},
    }
    assert task_labels(root) == {
        "t": {("dog", "category")},  # "sub" is a task root now, not a label of t
        "t2": {("red", "tag"), ("shiny", "tag")},
    }
    st = status_json(root, capsys)
    by_name = {t["name"]: t for t in st["tasks"]}
    assert by_name["t"]["images"] == 1
    assert by_name["t2"]["images"] == 2
    assert by_name["t2"]["unlabelled"] == 1  # sub/c.jpg
    assert by_name["t2"]["labels"] == {"red": 1, "shiny": 1}
    assert hu in {h for h, _r in files(root).values()}

    # binding the same folder twice, or a name twice, is refused
    again = run_repo("-C", str(root), "task", "add", "sub", "--task", "t3")
    assert again.returncode == 1 and "already bound" in again.stderr
    (root / "other").mkdir()
    dup = run_repo("-C", str(root), "task", "add", "other", "--task", "t2")
    assert dup.returncode == 1 and "t2" in dup.stderr


def test_multi_label_sidecar_labels_override_the_folders(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r", task_type="multi_label")
    hx = write_image(root, "red/x.jpg", 1)
    hy = write_image(root, "red/y.jpg", 2)
    write(root, "red/metadata.csv", "file_name,labels\nx.jpg,round;big\n")
    rep = scan(root)
    assert image_labels(root) == {
        ("t", hx): {"round": None, "big": None},  # the sidecar wins over the folder
        ("t", hy): {"red": None},
    }
    assert ("round", "tag") in task_labels(root)["t"]
    n = journal_count(root)
    write(root, "red/metadata.csv", "file_name,labels\nx.jpg,round\n")  # drop a tag
    rep = scan(root)
    assert [(c.kind, c.hash) for c in rep.changes] == [("labels_changed", hx)]
    assert rep.changes[0].detail == {"from": ["big", "round"], "to": ["round"]}
    assert journal_count(root) == n + 1


def test_a_sidecar_row_finds_a_file_whose_name_is_stored_nfd(tmp_path: Path) -> None:
    """Sidecars are compared in NFC; a file written with an NFD name still gets its value."""
    root = new_repo(tmp_path / "r", task_type="regression")
    nfd_name = unicodedata.normalize("NFD", "é.jpg")
    write_image(root, f"age/{nfd_name}", 1)
    write(root, "age/metadata.jsonl", json.dumps({"file_name": "é.jpg", "value": 4.5}) + "\n")
    scan(root)
    assert labels_by_path(root) == {f"age/{nfd_name}": {"age": 4.5}}


def test_status_label_counts_are_those_of_the_catalogued_labels(tmp_path: Path, capsys) -> None:
    """The scan keeps per-label image counts for `repo status` (so that status stays
    stat-only); they must equal what the image_label rows say, through copies, hard
    links, sidecars, unlabelled files and three tasks, and after edits."""
    root = new_repo(tmp_path / "r")
    for rel, seed in {
        "cats/a.jpg": 1, "cats/b.jpg": 2, "dogs/c.jpg": 3, "dogs/copy_of_a.jpg": 1,
        "birds/a_again.jpg": 1, "_unlabeled/d.jpg": 4, "e.jpg": 5,
        "sub/red/x.jpg": 6, "ages/young/y.jpg": 7, "ages/z.jpg": 8, "ages/old/w.jpg": 9,
    }.items():  # fmt: skip
        write_image(root, rel, seed)
    (root / "sub/shiny").mkdir()
    os.link(root / "sub/red/x.jpg", root / "sub/shiny/x.jpg")  # two tags, one image
    write(root, "ages/young/metadata.jsonl", json.dumps({"file_name": "y.jpg", "value": 3}))
    for folder, name, kind in (("sub", "tags", "multi_label"), ("ages", "age", "regression")):
        proc = run_repo("-C", str(root), "task", "add", folder, "--task", name, "--type", kind)
        assert proc.returncode == 0, proc.stderr

    def expected() -> dict[str, dict[str, int]]:
        # Every label of the task is shown, with 0 when no image carries it.
        out = {t: dict.fromkeys((n for n, _type in ls), 0) for t, ls in task_labels(root).items()}
        for (task, _h), labels in image_labels(root).items():
            for name in labels:
                out[task][name] += 1
        return out

    def shown() -> dict[str, dict[str, int]]:
        st = status_json(root, capsys)
        return {t["name"]: t["labels"] for t in st["tasks"] if t["labels"]}

    scan(root)
    assert shown() == expected()
    assert expected()["tags"] == {"red": 1, "shiny": 1}
    write(root, "ages/young/metadata.jsonl", json.dumps({"file_name": "y.jpg", "value": 5}))
    os.unlink(root / "birds/a_again.jpg")
    write_image(root, "dogs/f.jpg", 10)
    scan(root)
    assert shown() == expected()
