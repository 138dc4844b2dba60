"""A first scan writes its LOCAL labels while the pool hashes (scan/layoutstream.LayoutStream).

Whether the stream placed everything (the layout pass is skipped), placed part of it
(the layout pass diffs against the rows already written) or was not used at all (the
in-process scan below), the catalog must end the same."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.treebuilder import db, new_repo, run_repo, write, write_image

from localrepo.scan import layoutstream
from localrepo.scan.scanner import Scanner

from .test_split_walk import recorded


def first_scan(root: Path, workers: int) -> None:
    conn = db(root)
    try:
        Scanner(root, conn, workers=workers).scan()
    finally:
        conn.close()


def plain(root: Path) -> None:
    """multi_class, folders only: the stream places everything."""
    for i in range(12):
        write_image(root, f"{['dog', 'cat', 'bird'][i % 3]}/{i}.jpg", i)
    write_image(root, "top.jpg", 100)  # the task root: unlabelled
    write_image(root, "_unlabeled/u.jpg", 101)
    write_image(root, ".hidden/h.jpg", 102)  # a "." folder names no label
    (root / "empty").mkdir()  # an empty label folder is still a label
    write_image(root, "Fish/f.jpg", 103)
    write_image(root, "fish/g.jpg", 104)  # case twins: a problem, no merge


def copies(root: Path) -> None:
    """Copies of one image: in one folder (no conflict) and across two (ambiguous)."""
    plain(root)
    write(root, "dog/copy-of-0.jpg", (root / "dog/0.jpg").read_bytes())
    write(root, "cat/copy-of-3.jpg", (root / "dog/3.jpg").read_bytes())


def tagged(root: Path) -> None:
    """A multi_label task in a subfolder, with a hard-linked second tag."""
    plain(root)
    write_image(root, "tags/red/t.jpg", 200)
    (root / "tags/big").mkdir(parents=True)
    os.link(root / "tags/red/t.jpg", root / "tags/big/t.jpg")
    write_image(root, "tags/round/r.jpg", 201)
    proc = run_repo(
        "-C", str(root), "task", "add", "tags", "--task", "tags", "--type", "multi_label"
    )
    assert proc.returncode == 0, proc.stderr


def valueless(root: Path) -> None:
    """A regression task without a sidecar: every placement there has a problem."""
    plain(root)
    write_image(root, "reg/young/r.jpg", 300)
    proc = run_repo("-C", str(root), "task", "add", "reg", "--task", "reg", "--type", "regression")
    assert proc.returncode == 0, proc.stderr


def sidecar(root: Path) -> None:
    """A sidecar anywhere: no stream at all."""
    plain(root)
    write(root, "dog/metadata.jsonl", '{"file_name": "0.jpg", "meta": 1}\n')


def many(root: Path) -> None:
    """Enough files for the process pool, with copies among them."""
    for i in range(300):
        write_image(root, f"l{i % 7}/{i}.jpg", i)
    for i in range(0, 300, 50):
        write(root, f"l{(i + 1) % 7}/again-{i}.jpg", (root / f"l{i % 7}/{i}.jpg").read_bytes())


@pytest.mark.parametrize(
    ("build", "streamed_all"),
    [
        (plain, True),
        (copies, False),
        (tagged, False),
        (valueless, False),
        (sidecar, None),
        (many, False),
    ],
    ids=lambda x: getattr(x, "__name__", str(x)),
)
def test_a_first_scan_records_the_same_labels_streamed_or_not(
    tmp_path: Path, monkeypatch, build, streamed_all
) -> None:
    roots = [new_repo(tmp_path / "in-process"), new_repo(tmp_path / "streamed")]
    for root in roots:
        build(root)
    finishes: list[object] = []
    real_finish = layoutstream.LayoutStream.finish

    def spy(self, valid_files):  # type: ignore[no-untyped-def]
        result = real_finish(self, valid_files)
        finishes.append(result)
        return result

    monkeypatch.setattr(layoutstream.LayoutStream, "finish", spy)
    first_scan(roots[0], workers=1)  # no early hashing, no stream: the layout pass
    assert finishes == []
    first_scan(roots[1], workers=2)
    if streamed_all is None:
        assert finishes == []
    else:
        assert len(finishes) == 1 and (finishes[0] is not None) == streamed_all
    a, b = recorded(roots[0]), recorded(roots[1])
    assert a == b
    assert a["image_label"], "nothing was labelled"
    if build is plain:
        assert any(p[2] == "case_twins" for p in a["scan_problem"])
    # and a rescan after a move changes both alike
    for root in roots:
        os.rename(root / "dog/0.jpg", root / "cat/0.jpg") if (root / "dog/0.jpg").exists() else None
        first_scan(root, workers=1)
    assert recorded(roots[0]) == recorded(roots[1])
