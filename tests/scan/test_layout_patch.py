"""When a few files changed, the scan reads the catalogued hashes of those files alone
(statpass.FEW_FILES) and, when only files changed, re-derives the labels of the touched
images alone (scan/layoutpatch.py). The catalog must end exactly as a scan that reads
every file's hash and runs the whole layout pass leaves it, whether the patch applies
or falls back to the whole pass."""

from __future__ import annotations

import os
from pathlib import Path

from support.treebuilder import db, new_repo, run_repo, write, write_image

from localrepo.scan import layoutpatch, statpass
from localrepo.scan.scanner import Scanner

from .test_layout_stream import first_scan
from .test_split_walk import recorded


def build(root: Path) -> None:
    for i in range(9):
        write_image(root, f"{['dog', 'cat', 'bird'][i % 3]}/2024/{i:02d}/{i}.jpg", i)
    write_image(root, "top.jpg", 50)  # the task root: no label
    write_image(root, "tags/red/t.jpg", 60)
    write_image(root, "tags/round/r.jpg", 61)
    proc = run_repo(
        "-C", str(root), "task", "add", "tags", "--task", "tags", "--type", "multi_label"
    )
    assert proc.returncode == 0, proc.stderr


def rescan(root: Path) -> None:
    conn = db(root)
    try:
        Scanner(root, conn, workers=1).scan()
    finally:
        conn.close()


def without_weights(catalog: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The catalog but the split walk's folder weights, which a scan of a few changed
    files leaves as they were (a hint for balancing, not a record of the tree)."""
    catalog["meta"] = [r for r in catalog["meta"] if r[0] != "files_per_folder"]
    return catalog


# Each step: what it does to a tree, and whether the patch applies.
def small_changes(root: Path) -> None:
    write_image(root, "dog/2024/00/new.jpg", 100)  # added
    write_image(root, "cat/2024/01/1.jpg", 101)  # rewritten
    os.unlink(root / "bird/2024/02/2.jpg")  # deleted
    os.rename(root / "dog/2024/03/3.jpg", root / "cat/moved-3.jpg")  # another label
    os.rename(root / "top.jpg", root / "bird/top.jpg")  # unlabelled to labelled
    write_image(root, "loose.jpg", 102)  # a new unlabelled image
    write_image(root, "tags/round/red-too.jpg", 60)  # a second copy: both tags


def ambiguous_copy(root: Path) -> None:
    write(root, "cat/copy.jpg", (root / "dog/2024/06/6.jpg").read_bytes())  # two labels


def copy_gone(root: Path) -> None:
    os.unlink(root / "cat/copy.jpg")  # the problem the last scan recorded goes


def broken_file(root: Path) -> None:
    write(root, "cat/2024/04/4.jpg", b"not an image any more")  # a valid file turns invalid


def label_renamed(root: Path) -> None:
    os.rename(root / "bird", root / "parrot")  # a label folder: the whole pass


def moved_within(root: Path) -> None:
    os.rename(root / "dog/2024/06/6.jpg", root / "dog/six.jpg")  # a move, same label


def another_change(root: Path) -> None:
    write_image(root, "parrot/late.jpg", 103)
    os.unlink(root / "dog/new.jpg") if (root / "dog/new.jpg").exists() else None
    os.unlink(root / "cat/moved-3.jpg")


STEPS = [
    (small_changes, True),
    (ambiguous_copy, False),
    (copy_gone, False),
    (broken_file, True),
    (label_renamed, False),
    (moved_within, True),
    (another_change, True),
]


def test_a_few_changed_files_record_what_the_whole_scan_does(tmp_path: Path, monkeypatch) -> None:
    patched, whole = new_repo(tmp_path / "patched"), new_repo(tmp_path / "whole")
    for root in (patched, whole):
        build(root)
        first_scan(root, workers=1)
    assert recorded(patched) == recorded(whole)
    real_patch = layoutpatch.patch
    applied: list[bool] = []

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        applied.append(real_patch(*args, **kw))
        return applied[-1]

    for step, applies in STEPS:
        step(patched)
        step(whole)
        applied.clear()
        with monkeypatch.context() as m:
            m.setattr(layoutpatch, "patch", spy)
            rescan(patched)
        assert applied == [applies], step.__name__
        with monkeypatch.context() as m:  # every file's hash, and the whole layout pass
            m.setattr(layoutpatch, "patch", lambda *a, **kw: False)
            m.setattr(statpass, "FEW_FILES", 0)
            rescan(whole)
        a, b = without_weights(recorded(patched)), without_weights(recorded(whole))
        assert a == b, step.__name__
        assert a["image_label"], "nothing was labelled"
    problems = recorded(patched)["scan_problem"]
    assert problems == [], problems
