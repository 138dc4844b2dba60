"""The scanner on real trees, ignore rules: ignore files and the built-in defaults, and
`repo check-ignore`."""

from __future__ import annotations

from pathlib import Path

from support.treebuilder import (
    files,
    kinds,
    labels_by_path,
    new_repo,
    repo_main,
    run_repo,
    scan,
    write,
    write_image,
)

# --------------------------------------------------------------------------- ignore rules


def test_ignore_files_and_builtin_defaults_exclude_files(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    keep = {
        "dog/a.jpg": write_image(root, "dog/a.jpg", 1),
        "dog/keep.gif": write_image(root, "dog/keep.gif", 2, fmt="GIF"),
        "cat/c.jpg": write_image(root, "cat/c.jpg", 3),
        "cat/raw/r.jpg": write_image(root, "cat/raw/r.jpg", 4),  # raw/ only ignored at root
    }
    write(root, ".localrepoignore", "# comments are fine\n/raw/\n*.png\n")
    write(root, "dog/.localrepoignore", "*.gif\n!keep.gif\nprivate/\n")
    write_image(root, "raw/x.jpg", 10)
    write_image(root, "dog/p.png", 11, fmt="PNG")
    write_image(root, "dog/other.gif", 12, fmt="GIF")
    write_image(root, "dog/private/y.jpg", 13)
    # built-in defaults
    write_image(root, "dog/.hidden.jpg", 14)
    write_image(root, "__MACOSX/dog/a.jpg", 15)
    write_image(root, "upload.tmp/z.jpg", 16)
    write_image(root, "dog/~$lock.jpg", 17)
    write_image(root, ".git/objects/o.jpg", 18)

    rep = scan(root)
    assert {p: h for p, (h, _r) in files(root).items()} == keep
    assert rep.invalid == {}
    assert set(labels_by_path(root)) == set(keep)

    # Editing an ignore file takes effect on the next scan.
    write(root, "cat/.localrepoignore", "raw/\n")
    rep2 = scan(root)
    assert kinds(rep2) == [("deleted", None, "cat/raw/r.jpg")]
    assert "cat/raw/r.jpg" not in files(root)


def test_check_ignore_verbose_output_and_exit_codes(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    write(root, ".localrepoignore", "# top\n/raw/\n*.png\n")
    write(root, "dog/.localrepoignore", "*.gif\n!keep.gif\n")
    write_image(root, "dog/a.jpg", 1)

    def run(*args: str) -> tuple[int, str]:
        code, out, _ = repo_main(["-C", str(root), "check-ignore", *args], capsys)
        return code, out

    assert run("-v", "dog/x.gif") == (0, "dog/.localrepoignore:1:*.gif\tdog/x.gif\n")
    assert run("-v", "dog/sub/p.png") == (0, ".localrepoignore:3:*.png\tdog/sub/p.png\n")
    assert run("-v", "raw/x.jpg") == (0, ".localrepoignore:2:/raw/\traw/x.jpg\n")
    assert run("-v", "dog/x.tmp") == (0, "<default>::*.tmp\tdog/x.tmp\n")
    assert run("-v", "__MACOSX/a.jpg") == (0, "<default>::__MACOSX/\t__MACOSX/a.jpg\n")
    assert run("-v", ".hidden.jpg") == (0, "<default>::.*\t.hidden.jpg\n")
    assert run("dog/x.gif", "dog/a.jpg") == (0, "dog/x.gif\n")
    assert run("dog/a.jpg") == (1, "")
    assert run("dog/keep.gif") == (1, "")  # re-included by "!keep.gif"
    assert run("-v", "-n", "dog/a.jpg") == (1, "::\tdog/a.jpg\n")
    # relative to -C's folder
    code, out, _ = repo_main(["-C", str(root / "dog"), "check-ignore", "x.gif"], capsys)
    assert (code, out) == (0, "x.gif\n")
    # via the real console script too
    proc = run_repo("-C", str(root), "check-ignore", "-v", "dog/x.gif")
    assert proc.returncode == 0
    assert proc.stdout == "dog/.localrepoignore:1:*.gif\tdog/x.gif\n"
    proc = run_repo("-C", str(root), "check-ignore", "dog/a.jpg")
    assert proc.returncode == 1 and proc.stdout == ""
