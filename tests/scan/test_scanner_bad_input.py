"""The scanner on real trees, bad inputs: every bad file or folder is reported and the
scan goes on (damaged, unreadable, racing writers, odd names), and none is journalled as
a delete."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

from support.imagegen import decompression_bomb_png, truncated_jpeg
from support.treebuilder import (
    age,
    files,
    image_hashes,
    image_labels,
    img,
    journal_count,
    kinds,
    labels_by_path,
    new_repo,
    repo_main,
    scan,
    task_labels,
    write,
    write_image,
)

from localrepo.scan import hashing
from localrepo.scan.hashing import (
    CHANGED,
    EMPTY,
    NOT_AN_IMAGE,
    SYMLINK,
    TOO_LARGE,
    TRUNCATED,
    UNREADABLE,
    hash_bytes,
)

from .scanhelp import status_json


@lru_cache(maxsize=1)
def bomb() -> bytes:
    return decompression_bomb_png()


# --------------------------------------------------------------------------- bad inputs


def test_every_bad_input_is_reported_and_the_scan_goes_on(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    good = {
        "dog/a.jpg": write_image(root, "dog/a.jpg", 1),
        "cat/b.png": write_image(root, "cat/b.png", 2, fmt="PNG"),
        "z.jpg": write_image(root, "z.jpg", 3),
    }
    write(root, "dog/empty.jpg", b"")
    trunc = truncated_jpeg()
    write(root, "dog/truncated.jpg", trunc)
    write(root, "dog/text.jpg", "this is not an image, only text\n" * 4)
    write(root, "cat/bomb.png", bomb())
    os.mkfifo(root / "cat/fifo.jpg")
    os.symlink(root / "dog/a.jpg", root / "cat/link.jpg")
    os.symlink(root / "dog", root / "doglink")
    os.symlink("loop.jpg", root / "dog/loop.jpg")  # a symlink loop
    os.symlink("ping.jpg", root / "dog/pong.jpg")
    os.symlink("pong.jpg", root / "dog/ping.jpg")
    os.symlink("..", root / "cat/up")  # a folder loop, if it were followed

    # Pillow's verify() passes the truncated JPEG; only a full decode catches it.
    import io

    from PIL import Image

    with Image.open(io.BytesIO(trunc)) as im:
        im.verify()

    rep = scan(root)
    reasons = {p: r for p, (r, _d) in rep.invalid.items()}
    assert reasons == {
        "dog/empty.jpg": EMPTY,
        "dog/truncated.jpg": TRUNCATED,
        "dog/text.jpg": NOT_AN_IMAGE,
        "cat/bomb.png": TOO_LARGE,
        "cat/fifo.jpg": "not a regular file",
        "cat/link.jpg": SYMLINK,
        "doglink": "symlink to a folder skipped",
        "dog/loop.jpg": SYMLINK,
        "dog/ping.jpg": SYMLINK,
        "dog/pong.jpg": SYMLINK,
        "cat/up": "symlink to a folder skipped",
    }
    # good files are catalogued, bad ones never become images
    catalogued = files(root)
    assert {p: h for p, (h, r) in catalogued.items() if r is None} == good
    assert image_hashes(root) == set(good.values())
    assert labels_by_path(root) == {"dog/a.jpg": {"dog": None}, "cat/b.png": {"cat": None}}
    assert kinds(rep) == sorted(("added", p, None) for p in good)
    # symlinks were not followed: nothing under doglink/ or cat/up/
    assert not any(p.startswith(("doglink/", "cat/up/")) for p in catalogued)

    st = status_json(root, capsys)
    assert {i["path"]: i["reason"] for i in st["invalid"]} == reasons
    code, out, _ = repo_main(["-C", str(root), "status"], capsys)
    assert code == 0
    assert "dog/truncated.jpg: truncated image" in out
    assert "cat/bomb.png: too large" in out

    # A second scan reports them again (they are still there) and journals nothing.
    n = journal_count(root)
    rep2 = scan(root)
    assert {p: r for p, (r, _d) in rep2.invalid.items()} == reasons
    assert rep2.changes == []
    assert journal_count(root) == n


def test_a_valid_image_that_turns_invalid_is_not_journalled_as_a_delete(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    h = write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    scan(root)
    write(root, "dog/a.jpg", truncated_jpeg(5))
    rep = scan(root)
    assert rep.invalid["dog/a.jpg"][0] == TRUNCATED
    assert [(c.kind, c.path or c.old_path) for c in rep.changes] == [("modified", "dog/a.jpg")]
    assert rep.changes[0].detail.get("invalid") == TRUNCATED
    assert files(root)["dog/a.jpg"] == (None, TRUNCATED)
    assert all(hh != h for (_t, hh) in image_labels(root))


def _drop_read_override() -> None:  # pragma: no cover - runs in the child
    """In the child, before exec: drop the capabilities that let root read anything."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_file_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    """chmod 000 stops everyone but root; as root, the scan runs in a child process that
    has dropped CAP_DAC_OVERRIDE, so that the permission bits really apply to it."""
    root = new_repo(tmp_path / "r")
    good = write_image(root, "dog/a.jpg", 1)
    locked = write(root, "dog/locked.jpg", img(2))
    locked.chmod(0)
    preexec = _drop_read_override if os.geteuid() == 0 else None

    # the child really cannot read the file (so the scan really meets EACCES)
    probe = run_repo_as_child(
        [sys.executable, "-c", f"open({str(locked)!r}, 'rb').read()"], preexec
    )
    assert probe.returncode != 0 and "Permission denied" in probe.stderr

    proc = run_repo_as_child(
        [sys.executable, "-m", "localrepo", "-C", str(root), "scan", "--json"], preexec
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rep = json.loads(proc.stdout)
    invalid = {i["path"]: i for i in rep["invalid"]}
    assert invalid["dog/locked.jpg"]["reason"] == UNREADABLE
    assert "ermission" in (invalid["dog/locked.jpg"]["detail"] or "")
    assert [(c["kind"], c["path"]) for c in rep["changes"]] == [("added", "dog/a.jpg")]
    assert files(root)["dog/a.jpg"] == (good, None)
    assert files(root)["dog/locked.jpg"] == (None, UNREADABLE)

    # Once readable again, the next scan picks it up.
    locked.chmod(0o644)
    age(locked)
    rep2 = scan(root)
    assert [(c.kind, c.path) for c in rep2.changes] == [("added", "dog/locked.jpg")]
    assert files(root)["dog/locked.jpg"] == (hash_bytes(img(2)), None)


def run_repo_as_child(argv: list[str], preexec):
    import subprocess

    return subprocess.run(
        argv, capture_output=True, text=True, preexec_fn=preexec, timeout=120, check=False
    )


def test_a_file_that_cannot_be_opened_is_unreadable(tmp_path: Path, monkeypatch) -> None:
    """Fault injection for the open itself (EIO from a flaky disk or a network share)."""
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    real_open = hashing.os.open

    def failing_open(path, flags, *args, **kw):
        if str(path).endswith("dog/b.jpg"):
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(hashing.os, "open", failing_open)
    rep = scan(root)
    monkeypatch.undo()
    assert rep.invalid["dog/b.jpg"][0] == UNREADABLE
    assert [(c.kind, c.path) for c in rep.changes] == [("added", "dog/a.jpg")]
    rep2 = scan(root)  # an unreadable file is retried; now it reads
    assert [(c.kind, c.path) for c in rep2.changes] == [("added", "dog/b.jpg")]


def test_nfd_folder_name_gives_an_nfc_label_and_keeps_the_real_path(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    nfd = unicodedata.normalize("NFD", "Café")
    nfc = unicodedata.normalize("NFC", "Café")
    assert nfd != nfc
    h = write_image(root, f"{nfd}/a.jpg", 1)
    write_image(root, f"{nfc}/b.jpg", 2)  # the NFC spelling is the same label
    scan(root)
    catalogued = files(root)
    assert catalogued[f"{nfd}/a.jpg"] == (h, None)
    assert (root / f"{nfd}/a.jpg").is_file()  # the catalogued path is the real one
    by_path = labels_by_path(root)
    assert by_path[f"{nfd}/a.jpg"] == {nfc: None}
    assert by_path[f"{nfc}/b.jpg"] == {nfc: None}
    assert task_labels(root) == {"t": {(nfc, "category")}}


def test_case_twins_are_reported_never_merged(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    ha = write_image(root, "Dog/a.jpg", 1)
    hb = write_image(root, "dog/b.jpg", 2)
    rep = scan(root)
    twins = [p for p in rep.problems if p.kind == "case_twins"]
    assert len(twins) == 1
    assert "'Dog'" in twins[0].message and "'dog'" in twins[0].message
    assert image_labels(root) == {("t", ha): {"Dog": None}, ("t", hb): {"dog": None}}
    st = status_json(root, capsys)
    assert any(p["kind"] == "case_twins" for p in st["problems"])


def test_a_file_rewritten_while_being_hashed_is_retried_later(tmp_path: Path, monkeypatch) -> None:
    root = new_repo(tmp_path / "r")
    h1 = write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b.jpg", 2)
    scan(root)

    target = root / "dog/a.jpg"
    h2 = write_image(root, "dog/a.jpg", 20)  # changed since the last scan...
    third = img(300) + b"\0" * 7  # ...and again while it is being read
    h3 = hash_bytes(third)
    real_read = hashing.os.read
    fired = []

    def read_then_rewrite(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        if not fired and os.path.realpath(f"/proc/self/fd/{fd}") == str(target.resolve()):
            fired.append(True)
            with open(target, "r+b") as fh:  # in place: same inode, new size and mtime
                fh.write(third)
                fh.truncate()
        return data

    monkeypatch.setattr(hashing.os, "read", read_then_rewrite)
    rep = scan(root)
    monkeypatch.undo()
    assert fired, "the fault was not injected: hashing no longer reads with os.read?"
    assert rep.retry_later == ["dog/a.jpg"]
    assert rep.changes == []  # nothing journalled on a half-read file
    # no wrong hash: neither the bytes read (h2) nor a hash paired with the wrong stat
    assert files(root)["dog/a.jpg"] == (h1, None)
    assert h2 not in image_hashes(root)
    assert CHANGED not in {r for _h, r in files(root).values()}

    age(target)
    rep2 = scan(root)
    assert rep2.retry_later == []
    assert kinds(rep2) == [("modified", "dog/a.jpg", None)]
    assert files(root)["dog/a.jpg"] == (h3, None)


def test_a_new_file_rewritten_while_being_hashed_is_not_catalogued(
    tmp_path: Path, monkeypatch
) -> None:
    root = new_repo(tmp_path / "r")
    target = root / "dog/new.jpg"
    h1 = write_image(root, "dog/new.jpg", 1)
    real_read = hashing.os.read
    fired = []

    def read_then_grow(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        if not fired:
            fired.append(True)
            with open(target, "ab") as fh:
                fh.write(b"\0" * 100)
        return data

    monkeypatch.setattr(hashing.os, "read", read_then_grow)
    rep = scan(root)
    monkeypatch.undo()
    assert fired
    assert rep.retry_later == ["dog/new.jpg"]
    assert "dog/new.jpg" not in files(root)
    assert h1 not in image_hashes(root)
    age(target)
    rep2 = scan(root)
    assert kinds(rep2) == [("added", "dog/new.jpg", None)]


def test_a_non_utf8_file_name_is_reported_and_the_scan_goes_on(tmp_path: Path, capsys) -> None:
    root = new_repo(tmp_path / "r")
    h = write_image(root, "dog/a.jpg", 1)
    bad = os.fsencode(root) + b"/dog/caf\xe9-\xff.jpg"  # Latin-1 bytes, not UTF-8
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, img(2))
    os.close(fd)
    bad_dir = os.fsencode(root) + b"/\xfe\xfe"
    os.mkdir(bad_dir)
    fd = os.open(bad_dir + b"/x.jpg", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, img(3))
    os.close(fd)

    rep = scan(root)
    bad_names = {p: r for p, (r, _d) in rep.invalid.items() if "UTF-8" in r}
    assert len(bad_names) == 2
    assert all("\ufffd" in p for p in bad_names)  # shown with replacement characters
    assert any(p.startswith("dog/caf") for p in bad_names)
    assert {p: hh for p, (hh, r) in files(root).items() if r is None} == {"dog/a.jpg": h}
    assert image_hashes(root) == {h}
    # status copes with it too (JSON and porcelain -z)
    st = status_json(root, capsys)
    assert len([i for i in st["invalid"] if "UTF-8" in i["reason"]]) == 2
    code, out, _ = repo_main(["-C", str(root), "status", "--porcelain", "-z"], capsys)
    assert code == 0 and out.count("UTF-8") == 2


def test_a_bomb_is_refused_whatever_the_warning_filters_say() -> None:
    """Above MAX_IMAGE_PIXELS Pillow only warns; the check must not depend on a
    process-wide warning filter that warnings.catch_warnings() or pytest can undo."""
    import warnings

    for action in ("ignore", "default"):
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            reason, _detail, dims = hashing.check_image(bomb())
        assert (reason, dims) == (TOO_LARGE, None)
    assert hashing.check_image(img(1))[0] is None


def test_an_unreadable_folder_is_reported_and_its_files_are_not_deleted(tmp_path: Path) -> None:
    """A folder the scan cannot list (permissions, a flaky mount) hides its files; that is
    no reason to journal them as deleted (a sync would delete them remotely)."""
    root = new_repo(tmp_path / "r")
    ha = write_image(root, "dog/a.jpg", 1)
    hb = write_image(root, "dog/sub/b.jpg", 2)
    hc = write_image(root, "cat/c.jpg", 3)
    scan(root)
    n = journal_count(root)
    (root / "dog").chmod(0)
    preexec = _drop_read_override if os.geteuid() == 0 else None
    try:
        proc = run_repo_as_child(
            [sys.executable, "-m", "localrepo", "-C", str(root), "scan", "--json"],
            preexec,
        )
    finally:
        (root / "dog").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert {i["path"]: i["reason"] for i in rep["invalid"]} == {"dog": "unreadable folder"}
    assert rep["changes"] == []
    assert journal_count(root) == n
    valid = {"dog/a.jpg": ha, "dog/sub/b.jpg": hb, "cat/c.jpg": hc}
    assert {p: h for p, (h, r) in files(root).items() if r is None} == valid
    assert image_labels(root)[("t", ha)] == {"dog": None}
    # readable again: nothing happened
    assert scan(root).changes == [] and journal_count(root) == n
    assert {p: h for p, (h, _r) in files(root).items()} == valid
