"""The bad-input corpus (tests/support/badcorpus.py): every bad input of the design's list gets a
message that names its file, a sync next to them pushes the good files only, and nothing
on disk is lost or changed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from support.badcorpus import GOOD, build, img
from support.treebuilder import new_repo, repo_main

from localrepo.repository import Repository, add_task
from localrepo.scan.hashing import hash_bytes


def disk(root: Path) -> dict[str, bytes | str]:
    """Every entry under root but the state folder: file bytes, or what else it is."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".localrepo"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "-> " + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    out[rel] = f.read()
            else:
                out[rel] = f"mode {stat.S_IFMT(st.st_mode)}"
    return out


def corpus_repo(tmp_path: Path):
    root = new_repo(tmp_path / "r", task="pets")
    cases = build(root)
    add_task(Repository(root), root / "ages", task="age", task_type="regression")
    return root, cases


def test_every_bad_input_is_named_in_status(tmp_path: Path, capsys) -> None:
    root, cases = corpus_repo(tmp_path)
    before = disk(root)
    code, out, err = repo_main(["-C", str(root), "status", "--json"], capsys)
    assert code == 0, err
    st = json.loads(out)
    invalid = {i["path"]: i["reason"] for i in st["invalid"]}
    problems = [p["message"] for p in st["problems"]]
    for case in cases:
        if case.where == "invalid":
            assert case.shown in invalid, (case, invalid)
            assert case.says.lower() in invalid[case.shown].lower(), (case, invalid[case.shown])
        else:
            folder = case.shown.split("/")[0]
            hits = [
                m for m in problems if case.says in m and (case.shown in m or f"'{folder}'" in m)
            ]
            assert hits, (case, problems)
    # Good files are images with their labels; the plain status names them too.
    code, text, _ = repo_main(["-C", str(root), "status"], capsys)
    assert code == 0
    for case in cases:
        if case.where == "invalid":
            assert case.shown in text, case
    assert disk(root) == before


def test_a_sync_next_to_bad_inputs_pushes_the_good_files_and_loses_nothing(
    tmp_path: Path, account, capsys, monkeypatch
) -> None:
    root, cases = corpus_repo(tmp_path)
    before = disk(root)
    monkeypatch.setenv("LOCALREPO_TOKEN", account.token)
    monkeypatch.setenv("LOCALREPO_CONFIG_DIR", str(tmp_path / "cfg"))
    assert repo_main(["-C", str(root), "remote", "set", account.url], capsys)[0] == 0
    code, out, err = repo_main(["-C", str(root), "sync", "--json"], capsys)
    # Not in sync yet (exit 3): dog/good1.jpg and its twin cat/copy.jpg are a conflict on
    # the image's category, for the user to settle.
    assert code == 3, (out, err)
    summary = json.loads(out)
    assert summary["failed"] == [] and summary["conflicts"] == 1, summary
    with account.client() as api:
        items = api.get("training-image/", params={"page_size": 1000}).json()["results"]
    remote = {(i["meta_data"] or {}).get("content_hash", "").split(":")[-1] for i in items}
    # The clear good files are there; the image in conflict (dog/good1.jpg has a twin in
    # cat/) and the files that are no image or have no value are not.
    assert {hash_bytes(img(GOOD[p])) for p in ("cat/good2.jpg", "ages/young/good3.jpg")} <= remote
    never_paths = [c.path for c in cases if c.where == "invalid"] + [
        "ages/old/novalue.jpg",
        "ages/old/nan.jpg",
        "cat/copy.jpg",
    ]
    never = {hash_bytes(v) for p in never_paths if isinstance(v := before.get(p), bytes)}
    assert len(never) == 8, never  # empty, truncated, text, bomb, non-UTF-8, no value, NaN, copy
    assert not remote & never
    assert disk(root) == before
