"""The data folder is its owner's alone (issue 20, item 4): 0700, and the database, its
WAL files, blobs and thumbnails 0600, for a new folder and for one an older server
wrote with looser modes (fixed at start)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .helpers import image_bytes, upload


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _loose_modes(data: Path) -> list[tuple[str, str]]:
    found = []
    for path in [data, *data.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if _mode(path) != want:
            found.append((str(path.relative_to(data.parent)), oct(_mode(path))))
    return found


def test_the_data_folder_and_its_files_are_private(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory()  # the test made the folder 0755 before the server started
    api = server.client()
    image = upload(api, image_bytes(41))
    assert httpx.get(image["thumb_img_path"], timeout=30).status_code == 200
    data = server.data_dir
    assert (data / "server.db").exists() and list((data / "blobs").rglob("*"))
    assert list((data / "thumbs").rglob("*.jpg"))
    assert _loose_modes(data) == []
    # A folder written by an older server (world-readable files) is fixed at start.
    server.stop()
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    server.start()
    assert _loose_modes(data) == []
    out = server.run_cli("fsck", "--grace-seconds", "0")
    assert "every image has its file" in out.stdout
