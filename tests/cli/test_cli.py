"""Acceptance tests for the `repo` command line: the real CLI, on real folders."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tomllib
from pathlib import Path

import pytest
from support.treebuilder import (
    journal_count,
    new_repo,
    repo_main,
    run_repo,
    write,
    write_image,
)

import localrepo
from localrepo.catalog.db import catalog_path

BIN = Path(sys.executable).parent


def _task_count(root: Path) -> int:
    conn = sqlite3.connect(catalog_path(root))
    try:
        return conn.execute("SELECT COUNT(*) FROM task").fetchone()[0]
    finally:
        conn.close()


# --------------------------------------------------------------------------- init


def test_init_creates_the_state_folder_and_binds_the_root(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    proc = run_repo("init", str(root), "--task", "pets", "--type", "multi_label")
    assert proc.returncode == 0, proc.stderr
    assert "Initialised" in proc.stderr and proc.stdout == ""
    state = root / ".localrepo"
    assert (state / "catalog.db").is_file()
    assert (state / "config.toml").is_file()
    for sub in ("trash", "tmp", "logs"):
        assert (state / sub).is_dir()
    config = tomllib.loads((state / "config.toml").read_text())
    assert config["sync"]["policy"] == "manual"
    assert not any("token" in key for section in config.values() for key in section)  # no secrets
    listed = run_repo("-C", str(root), "task", "list", "--json")
    assert listed.returncode == 0
    assert [(t["name"], t["type"], t["root"]) for t in json.loads(listed.stdout)] == [
        ("pets", "multi_label", "")
    ]


def test_init_in_the_current_folder_with_remote_settings(tmp_path: Path) -> None:
    root = tmp_path / "here"
    root.mkdir()
    proc = run_repo(
        "init", "--task", "t", "--remote", "http://127.0.0.1:9/", "--workspace", "ws1", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    config = tomllib.loads((root / ".localrepo/config.toml").read_text())
    assert config["remote"] == {"url": "http://127.0.0.1:9/", "workspace": "ws1"}


def test_init_refuses_to_initialise_twice(tmp_path: Path) -> None:
    root = tmp_path / "r"
    assert run_repo("init", str(root), "--task", "t").returncode == 0
    proc = run_repo("init", str(root), "--task", "other")
    assert proc.returncode == 1
    assert "already a localrepo repository" in proc.stderr
    assert _task_count(root) == 1


def test_init_refuses_to_nest_inside_another_repository(tmp_path: Path) -> None:
    outer = new_repo(tmp_path / "outer")
    inner = outer / "dogs" / "inner"
    inner.mkdir(parents=True)
    proc = run_repo("init", str(inner), "--task", "inner")
    assert proc.returncode == 1
    assert f"inside the repository {outer}" in proc.stderr
    assert "task add dogs/inner" in proc.stderr  # says what to do instead
    assert not (inner / ".localrepo").exists()
    # ...also when started inside it with -C
    proc = run_repo("-C", str(inner), "init", "--task", "inner")
    assert proc.returncode == 1 and not (inner / ".localrepo").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["init", "--task", "t", "--type", "multi_klass"],
        ["init", "--type", "regression"],  # --task is required
        ["-C", "{root}", "task", "add", "sub", "--task", "t2", "--type", "bogus"],
        ["-C", "{root}", "status", "-z"],  # -z goes with --porcelain
        ["-C", "{root}", "status", "--json", "--porcelain"],
        ["-C", "{root}", "log", "--limit", "0"],
        ["-C", "{root}", "frobnicate"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(tmp_path: Path, capsys, argv) -> None:
    root = new_repo(tmp_path / "r")
    target = tmp_path / "new"
    target.mkdir()
    argv = [a.replace("{root}", str(root)) for a in argv]
    if argv[0] == "init":
        argv = ["-C", str(target), *argv]
    code, out, err = repo_main(argv, capsys)
    assert code == 2
    assert out == ""
    assert "Error" in err or "Usage" in err
    assert not (target / ".localrepo").exists()
    assert _task_count(root) == 1


def test_bad_type_via_the_console_script(tmp_path: Path) -> None:
    proc = run_repo("init", str(tmp_path / "r"), "--task", "t", "--type", "nope")
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "multi_class" in proc.stderr
    assert not (tmp_path / "r" / ".localrepo").exists()


# --------------------------------------------------------------------------- global options


def test_version(capsys) -> None:
    code, out, _ = repo_main(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"localrepo, version {localrepo.__version__}"
    for script in ("repo", "localrepo"):  # the console scripts and the alias
        proc = run_repo_script(script, "--version")
        assert proc.returncode == 0
        assert localrepo.__version__ in proc.stdout


def run_repo_script(name: str, *args: str, **kw):
    import subprocess

    return subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, timeout=60, check=False, **kw
    )


def test_dash_C_runs_as_if_started_in_that_folder(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/deep/a.jpg", 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # from a subfolder, the repository is found upwards, like git
    proc = run_repo("-C", str(root / "dog/deep"), "status", "--json", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tasks"][0]["labels"] == {"dog": 1}
    # relative -C, resolved against the working folder
    proc = run_repo("-C", "r", "log", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    assert [e["path"] for e in json.loads(proc.stdout)] == ["dog/deep/a.jpg"]
    # task add PATH is relative to -C
    code, _out, err = repo_main(
        ["-C", str(root / "dog"), "task", "add", "deep", "--task", "deep"], capsys
    )
    assert code == 0, err
    code, out, _ = repo_main(["-C", str(root), "task", "list", "--json"], capsys)
    assert {t["root"] for t in json.loads(out)} == {"", "dog/deep"}
    # a -C that is not a folder is a usage error
    code, _out, err = repo_main(["-C", str(tmp_path / "missing"), "status"], capsys)
    assert code == 2 and "missing" in err


def test_quiet_says_only_what_went_wrong(tmp_path: Path) -> None:
    loud = run_repo("init", str(tmp_path / "a"), "--task", "t")
    quiet = run_repo("-q", "init", str(tmp_path / "b"), "--task", "t")
    assert loud.returncode == quiet.returncode == 0
    assert loud.stderr and quiet.stderr == ""
    again = run_repo("-q", "init", str(tmp_path / "b"), "--task", "t")
    assert again.returncode == 1 and "already" in again.stderr  # errors still show


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["scan"],
        ["log"],
        ["task", "list"],
        ["task", "add", "sub", "--task", "x"],
        ["check-ignore", "a.jpg"],
    ],
)
def test_outside_a_repository_is_a_clear_error(tmp_path: Path, argv) -> None:
    proc = run_repo("-C", str(tmp_path), *argv)
    assert proc.returncode == 1
    assert "not inside a localrepo repository" in proc.stderr
    assert "repo init" in proc.stderr
    assert proc.stdout == ""


def test_a_corrupt_catalog_is_a_clear_error(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    for suffix in ("-wal", "-shm"):
        Path(str(catalog_path(root)) + suffix).unlink(missing_ok=True)
    catalog_path(root).write_bytes(b"garbage, not SQLite " * 500)
    proc = run_repo("-C", str(root), "status")
    assert proc.returncode == 1
    assert "not a localrepo catalog" in proc.stderr


# --------------------------------------------------------------------------- status


@pytest.fixture
def pending_repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    write_image(root, "cat/c.jpg", 3)
    write_image(root, "cat/d.jpg", 4)
    write(root, "cat/notes.jpg", "plain text\n")
    assert run_repo("-C", str(root), "scan").returncode == 0
    os.rename(root / "dog/b.jpg", root / "cat/b.jpg")
    write_image(root, "dog/new\nline.jpg", 5)
    return root


def test_status_human(pending_repo: Path, capsys) -> None:
    code, out, _err = repo_main(["-C", str(pending_repo), "status"], capsys)
    assert code == 0
    assert "Task 't' (multi_class) in ./: 5 images" in out
    assert "pending changes: 5 added, 1 moved" in out
    assert "cat/notes.jpg: not an image" in out
    lines = out.splitlines()
    assert any(line.split() == ["cat", "3"] for line in lines)
    assert any(line.split() == ["dog", "2"] for line in lines)


def test_status_lists_a_new_file_without_a_label(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1)
    write_image(root, "loose.jpg", 2)  # beside the label folders: no label
    code, out, _err = repo_main(["-C", str(root), "status"], capsys)
    assert code == 0 and "pending changes: 2 added" in out
    assert "  new:           dog/a.jpg (dog)" in out
    assert "  new:           loose.jpg (no label)" in out
    os.remove(root / "loose.jpg")
    code, out, _err = repo_main(["-C", str(root), "status"], capsys)
    assert "loose.jpg" not in out  # gone before it was ever synced: nothing to list


def test_status_json(pending_repo: Path, capsys) -> None:
    code, out, _err = repo_main(["-C", str(pending_repo), "status", "--json"], capsys)
    assert code == 0
    st = json.loads(out)
    (task,) = st["tasks"]
    assert (task["name"], task["type"], task["root"]) == ("t", "multi_class", "")
    assert task["images"] == 5 and task["unlabelled"] == 0
    assert task["labels"] == {"cat": 3, "dog": 2}
    assert task["pending"] == {"added": 5, "moved": 1}
    assert st["pending_total"] == 6
    assert st["invalid"] == [
        {"path": "cat/notes.jpg", "reason": "not an image", "detail": st["invalid"][0]["detail"]}
    ]
    kinds = [(c["kind"], c["path"], c["old_path"]) for c in st["changes"]]
    assert ("moved", "cat/b.jpg", "dog/b.jpg") in kinds
    assert ("added", "dog/new\nline.jpg", None) in kinds
    assert st["conflicts"] == 0


def test_status_porcelain(pending_repo: Path, capsys) -> None:
    code, out, _err = repo_main(["-C", str(pending_repo), "status", "--porcelain"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert "A dog/a.jpg" in lines
    assert "R dog/b.jpg -> cat/b.jpg" in lines
    assert 'A "dog/new\\nline.jpg"' in lines  # quoted: one record per line
    assert "! cat/notes.jpg\tnot an image" in lines
    assert len(lines) == 7  # 4 added by the first scan, a move, an add, an invalid file


def test_status_porcelain_z(pending_repo: Path, capsys) -> None:
    code, out, _err = repo_main(["-C", str(pending_repo), "status", "--porcelain", "-z"], capsys)
    assert code == 0
    assert out.endswith("\0") and "\n" not in out.replace("new\nline", "")
    fields = out.split("\0")[:-1]
    assert "A dog/new\nline.jpg" in fields  # raw, no quoting with -z
    i = fields.index("R cat/b.jpg")
    assert fields[i + 1] == "dog/b.jpg"  # the move's source follows as its own field
    i = fields.index("! cat/notes.jpg")
    assert fields[i + 1] == "not an image"


def test_status_exit_code(tmp_path: Path, pending_repo: Path, capsys) -> None:
    code, _out, _err = repo_main(["-C", str(pending_repo), "status", "--exit-code"], capsys)
    assert code == 3
    code, _out, _err = repo_main(["-C", str(pending_repo), "status"], capsys)
    assert code == 0  # without --exit-code, pending changes are no error
    empty = new_repo(tmp_path / "empty")
    code, out, _err = repo_main(["-C", str(empty), "status", "--exit-code"], capsys)
    assert code == 0
    assert "Nothing pending." in out
    proc = run_repo("-C", str(pending_repo), "status", "--exit-code", "--porcelain")
    assert proc.returncode == 3 and "A dog/a.jpg" in proc.stdout


def test_status_is_fast_to_repeat_and_scans_first(pending_repo: Path, capsys) -> None:
    """status scans before it reports: a file added since the last scan shows at once."""
    write_image(pending_repo, "bird/e.jpg", 6)
    code, out, _err = repo_main(["-C", str(pending_repo), "status", "--json"], capsys)
    assert code == 0
    st = json.loads(out)
    assert st["tasks"][0]["labels"]["bird"] == 1
    n = journal_count(pending_repo)
    code, out2, _err = repo_main(["-C", str(pending_repo), "status", "--json"], capsys)
    assert journal_count(pending_repo) == n  # a second status journals nothing new
    assert json.loads(out2)["pending_total"] == st["pending_total"]


# --------------------------------------------------------------------------- scan and log


def test_scan_dry_run_records_nothing(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1)
    write_image(root, "cat/b.jpg", 2)
    code, out, _err = repo_main(["-C", str(root), "scan", "-n", "--json"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert sorted((c["kind"], c["path"]) for c in rep["changes"]) == [
        ("added", "cat/b.jpg"),
        ("added", "dog/a.jpg"),
    ]
    assert journal_count(root) == 0
    conn = sqlite3.connect(catalog_path(root))
    assert conn.execute("SELECT COUNT(*) FROM file").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM image").fetchone()[0] == 0
    conn.close()
    code, out, _err = repo_main(["-C", str(root), "scan", "--dry-run"], capsys)
    assert code == 0 and "2 added" in out
    assert journal_count(root) == 0
    code, out, _err = repo_main(["-C", str(root), "scan"], capsys)
    assert code == 0 and "2 added" in out
    assert journal_count(root) == 2
    code, out, _err = repo_main(["-C", str(root), "scan"], capsys)
    assert code == 0 and "no changes" in out and "(0 hashed)" in out


def test_log_json_limit_and_human(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    code, out, _err = repo_main(["-C", str(root), "log"], capsys)
    assert (code, out) == (0, "The journal is empty.\n")
    code, out, _err = repo_main(["-C", str(root), "log", "--json"], capsys)
    assert (code, json.loads(out)) == (0, [])

    write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    write_image(root, "cat/c.jpg", 3)
    repo_main(["-C", str(root), "scan"], capsys)
    os.rename(root / "dog/a.jpg", root / "cat/a.jpg")
    repo_main(["-C", str(root), "scan"], capsys)

    code, out, _err = repo_main(["-C", str(root), "log", "--json"], capsys)
    assert code == 0
    entries = json.loads(out)
    assert [e["kind"] for e in entries] == ["moved", "added", "added", "added"]  # newest first
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    moved = entries[0]
    assert (moved["path"], moved["old_path"], moved["task"], moved["status"]) == (
        "cat/a.jpg",
        "dog/a.jpg",
        "t",
        "pending",
    )
    assert len(moved["hash"]) == 32 and moved["time"].endswith("+00:00")

    code, out, _err = repo_main(["-C", str(root), "log", "--json", "--limit", "2"], capsys)
    assert [e["id"] for e in json.loads(out)] == [e["id"] for e in entries[:2]]

    assert moved["change"] == {
        "kind": "relabelled",
        "side": "local",
        "path": "cat/a.jpg",
        "old_path": "dog/a.jpg",
        "old": "dog",
        "new": "cat",
        "detail": None,
        "delete_image": True,
    }

    code, out, _err = repo_main(["-C", str(root), "log", "--limit", "1"], capsys)
    assert code == 0
    (line,) = out.splitlines()
    assert "local   relabelled: cat/a.jpg (from dog/a.jpg; dog -> cat) (not synced yet)" in line

    code, out, _err = repo_main(["-C", str(root), "log", "--debug", "--limit", "1"], capsys)
    (line,) = out.splitlines()  # the entry as recorded
    assert "moved" in line and "dog/a.jpg -> cat/a.jpg" in line and "pending" in line

    code, out, _err = repo_main(["-C", str(root), "log", "--pending", "--json"], capsys)
    assert len(json.loads(out)) == 4


def test_task_list_human(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r", task="pets")
    (root / "birds").mkdir()
    code, _out, err = repo_main(
        ["-C", str(root), "task", "add", "birds", "--task", "birds", "--type", "regression"],
        capsys,
    )
    assert code == 0 and "Bound birds/" in err
    code, out, _err = repo_main(["-C", str(root), "task", "list"], capsys)
    assert out.splitlines() == ["pets\tmulti_class\t./", "birds\tregression\tbirds/"]
    # refused: the state folder, outside the repository, the root again
    for path, msg in (
        (".localrepo/x", ".localrepo"),
        (str(tmp_path), "outside"),
        (".", "already bound"),
    ):
        code, _out, err = repo_main(["-C", str(root), "task", "add", path, "--task", "z"], capsys)
        assert code == 2 and msg in err, (path, err)


def test_task_add_needs_an_existing_folder(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r", task="pets")
    write(root, "notes/readme.txt", b"hello")
    code, _out, err = repo_main(["-C", str(root), "task", "add", "brids", "--task", "b"], capsys)
    assert code == 2
    assert "brids/ does not exist" in err and f"mkdir -p {root / 'brids'}" in err
    assert not (root / "brids").exists()  # a typo creates nothing
    code, _out, err = repo_main(
        ["-C", str(root), "task", "add", "notes/readme.txt", "--task", "b"], capsys
    )
    assert code == 2 and "readme.txt" in err and "file" in err
    assert _task_count(root) == 1
    (root / "birds").mkdir()
    code, _out, err = repo_main(["-C", str(root), "task", "add", "birds", "--task", "b"], capsys)
    assert code == 0, err
    assert _task_count(root) == 2


def test_task_remove_of_a_task_never_synced_and_its_refusals(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r", task="pets")
    write_image(root, "dog/d.jpg", 1)
    write_image(root, "wild/owls/o.jpg", 2)
    write_image(root, "wild/deep/hawks/h.jpg", 3)
    for folder, name in (("wild", "wild"), ("wild/deep", "deep")):
        code, _out, err = repo_main(
            ["-C", str(root), "task", "add", folder, "--task", name], capsys
        )
        assert code == 0, err
    before = {p: p.read_bytes() for p in root.rglob("*.jpg")}
    # A task with tasks bound inside its folder would hide them: remove those first.
    code, _out, err = repo_main(["-C", str(root), "task", "remove", "wild"], capsys)
    assert code == 2 and "(deep)" in err and "repo task remove deep" in err
    # Never synced: nothing on a server to fall out of step with, so no --force needed.
    code, _out, err = repo_main(["-C", str(root), "task", "remove", "deep"], capsys)
    assert code == 0, err
    assert "join the task 'wild'" in err
    assert (root / ".localrepoignore").read_text().splitlines()[-1] == "/wild/deep/"
    code, out, _err = repo_main(["-C", str(root), "status", "--json"], capsys)
    by_name = {t["name"]: t for t in json.loads(out)["tasks"]}
    assert set(by_name) == {"pets", "wild"}
    assert by_name["wild"]["labels"] == {"owls": 1}  # deep/hawks did not join "wild"
    assert {p: p.read_bytes() for p in root.rglob("*.jpg")} == before
    code, _out, err = repo_main(["-C", str(root), "task", "rename", "wilf", "x"], capsys)
    assert code == 2 and "did you mean 'wild'?" in err and "(tasks: pets, wild)" in err


def test_ignore_pattern_names_exactly_one_folder() -> None:
    from localrepo.ignore import IgnoreRules
    from localrepo.repository import ignore_pattern

    assert ignore_pattern("birds") == "/birds/"
    assert ignore_pattern("a*b/c[1]?") == "/a\\*b/c\\[1]\\?/"
    assert ignore_pattern("x ") == "/x\\ /"
    rules = IgnoreRules.from_texts({"": ignore_pattern("a*b") + "\n"})
    assert rules.match("a*b/x.jpg", False) is not None
    assert rules.match("aXb/x.jpg", False) is None
