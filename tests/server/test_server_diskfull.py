"""A full disk (issue 20, item 3): an upload answers 507 with a JSON body and leaves no
partial file, on the event loop's path and the worker thread's, and succeeds once there
is room again. The fault is injected into the real server process
(tests/support/diskfull/sitecustomize.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import b64, image_bytes, smooth_jpeg

FAULTS = Path(__file__).resolve().parents[1] / "support" / "diskfull"


def test_a_full_disk_answers_507_and_leaves_no_partial_file(
    server_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "disk-is-full"
    monkeypatch.setenv("LOCALREPO_TEST_DISK_FULL", str(flag))
    monkeypatch.setenv("PYTHONPATH", f"{FAULTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    server = server_factory()
    api = server.client()
    small = image_bytes(31)  # checked and stored on the event loop
    large = smooth_jpeg(32, (2400, 1800))  # resized in a worker thread
    flag.touch()
    for data in (small, large):
        r = api.post("training-image/", json={"base64": b64(data)})
        assert r.status_code == 507, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert "disk is full" in r.json()["detail"]
    blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    assert blobs == []  # neither a temp file nor a blob
    assert api.get("training-image/").json()["count"] == 0
    assert "Traceback" not in server.log_text()
    flag.unlink()
    for data in (small, large):
        r = api.post("training-image/", json={"base64": b64(data)})
        assert r.status_code == 201, r.text
    assert api.get("training-image/").json()["count"] == 2
    stored = {p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}
    assert hashlib.sha256(small).hexdigest() in stored
    assert len(stored) == 2
