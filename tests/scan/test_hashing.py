"""examine(): the bytes it hashes are the file's, whatever the file's size, and a file
that grows while it is read is never hashed as if it had not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localrepo.scan import hashing
from localrepo.scan.hashing import CHANGED, EMPTY, NOT_AN_IMAGE, examine, hash_bytes


@pytest.mark.parametrize("size", [1, 2, 65535, 65536, 65537, 3 * 65536 + 5])
def test_every_byte_is_read_around_the_read_size(tmp_path: Path, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    (tmp_path / "f.jpg").write_bytes(body)
    ex = examine(str(tmp_path), "f.jpg")
    assert (ex.hash, ex.size, ex.reason) == (hash_bytes(body), size, NOT_AN_IMAGE)


def test_an_empty_file_is_hashed_and_named(tmp_path: Path) -> None:
    (tmp_path / "f.jpg").write_bytes(b"")
    ex = examine(str(tmp_path), "f.jpg")
    assert (ex.hash, ex.reason) == (hash_bytes(b""), EMPTY)


@pytest.mark.parametrize("when", ["before the first read", "after the first read"])
def test_a_file_that_grows_while_read_is_changed(tmp_path: Path, monkeypatch, when: str) -> None:
    path = tmp_path / "f.jpg"
    path.write_bytes(b"x" * 1000)
    real_read = os.read
    grown = []

    def grow() -> None:
        with open(path, "ab") as fh:
            fh.write(b"y" * 10)
        grown.append(True)

    def read(fd: int, n: int) -> bytes:
        if when == "before the first read" and not grown:
            grow()
        data = real_read(fd, n)
        if when == "after the first read" and not grown:
            grow()
        return data

    monkeypatch.setattr(hashing.os, "read", read)
    ex = examine(str(tmp_path), "f.jpg")
    assert grown
    assert (ex.hash, ex.reason) == (None, CHANGED)


def test_a_warmed_up_worker_checks_every_format_it_names(tmp_path: Path) -> None:
    """warm_up() loads only Pillow's common plugins; a WebP or TIFF must still be checked
    (Image.open() loads the rest when a file needs them). In a fresh interpreter, where
    nothing else has loaded them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from support.imagegen import image_bytes\n"
        "from localrepo.scan import hashing\n"
        "hashing.warm_up()\n"
        "for fmt, ext in [('WEBP', 'webp'), ('TIFF', 'tif'), ('GIF', 'gif'), ('BMP', 'bmp'),"
        " ('PNG', 'png'), ('JPEG', 'jpg')]:\n"
        "    for name in ('a.' + ext, 'a.jpg', ''):\n"
        "        got = hashing.check_image(image_bytes(1, fmt=fmt), name)\n"
        "        assert got == (None, None, (64, 48, fmt)), (fmt, name, got)\n"
        "print('ok')\n"
    )
    tests_dir = str(Path(__file__).parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tests_dir
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
