"""Nothing orphaned, nothing half-written (issue 20, item 3): the sweep at start,
`localrepo-server fsck`, and a real server killed (SIGKILL) during concurrent uploads."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support.waiting import limit

from .helpers import b64, image_bytes, upload


def _blob_files(data: Path) -> tuple[set[str], list[Path]]:
    """(final blob names, temp files) under the data folder's blobs/."""
    finals: set[str] = set()
    temps: list[Path] = []
    for path in (data / "blobs").rglob("*"):
        if path.is_file():
            if path.name.endswith(".part"):
                temps.append(path)
            else:
                finals.add(path.name)
    return finals, temps


def _referenced(server: Any) -> set[str]:
    db = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT blob_sha256 FROM images")}


def _plant_blob(data: Path, payload: bytes, *, age: float = 0.0) -> Path:
    sha = hashlib.sha256(payload).hexdigest()
    path = data / "blobs" / sha[:2] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def _plant_temp(data: Path, *, age: float = 0.0) -> Path:
    path = data / "blobs" / "ab" / f".ab{'0' * 62}.{os.urandom(8).hex()}.part"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an image")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def test_fsck_removes_old_leftovers_keeps_recent_ones_and_reports_missing_files(
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory()
    api = server.client()
    kept = upload(api, image_bytes(1))
    lost = upload(api, image_bytes(2))
    server.stop()
    data = server.data_dir
    old_orphan = _plant_blob(data, image_bytes(3), age=3600)
    young_orphan = _plant_blob(data, image_bytes(4))
    old_temp = _plant_temp(data, age=3600)
    young_temp = _plant_temp(data)
    lost_sha = lost["img_path"].split("/")[-2]
    (data / "blobs" / lost_sha[:2] / lost_sha).unlink()

    out = server.run_cli("fsck", check=False)
    assert out.returncode == 1, out.stdout + out.stderr  # a missing file needs attention
    text = out.stdout
    assert "removed 1 temporary file" in text, text
    assert "1 orphan blob (" in text, text
    assert "kept 2 recent files" in text, text
    assert "1 image whose file is missing" in text, text
    assert lost["id"] in text, text
    assert "Traceback" not in out.stderr
    assert not old_orphan.exists() and not old_temp.exists()
    assert young_orphan.exists() and young_temp.exists()
    # Rows are never deleted: the image with the missing file is still listed.
    server.start()
    ids = {r["id"] for r in server.client().get("training-image/").json()["results"]}
    assert {kept["id"], lost["id"]} <= ids
    # The sweep at start (one server per data folder: no upload is under way) took
    # the recent leftovers too.
    assert not young_orphan.exists() and not young_temp.exists()
    r = httpx.get(kept["img_path"], timeout=30)
    assert r.status_code == 200 and r.content


def test_fsck_with_nothing_wrong_says_so(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    upload(server.client(), image_bytes(5))
    out = server.run_cli("fsck", "--grace-seconds", "0")
    assert "removed 0 temporary files, 0 orphan blobs" in out.stdout, out.stdout
    assert "every image has its file" in out.stdout, out.stdout


def _uploader(
    server: Any, seeds: list[int], acked: dict[str, bytes], stop: threading.Event
) -> None:
    with httpx.Client(base_url=server.api_url, headers=server.client().headers, timeout=30) as c:
        for seed in seeds:
            if stop.is_set():
                return
            data = image_bytes(seed, size=(96, 72))
            try:
                r = c.post("training-image/", json={"base64": b64(data)})
            except httpx.HTTPError:
                return
            if r.status_code == 201:
                acked[r.json()["id"]] = data


def test_kill_9_during_concurrent_uploads_leaves_no_orphan_and_loses_no_acknowledged_image(
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory()
    acked: dict[str, bytes] = {}
    rng = random.Random(20)
    seed = 1000
    for _round in range(5):
        stop = threading.Event()
        threads = []
        for _ in range(6):
            seeds = list(range(seed, seed + 200))
            seed += 200
            threads.append(threading.Thread(target=_uploader, args=(server, seeds, acked, stop)))
        had = len(acked)
        for t in threads:
            t.start()
        # Some uploads acknowledged (however busy the machine), then the kill lands
        # at a random moment among those under way.
        deadline = time.monotonic() + limit(60)
        while len(acked) < had + 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        server.stop(kill=True)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server.start()  # the sweep at start runs before it listens
        finals, temps = _blob_files(server.data_dir)
        assert temps == [], temps
        assert finals == _referenced(server), "orphan blobs (or rows without blobs)"
    assert len(acked) > 20
    with server.client() as api:
        for image_id, data in acked.items():
            r = api.get(f"training-image/{image_id}/")
            assert r.status_code == 200, (image_id, r.text)
            got = httpx.get(r.json()["img_path"], timeout=30)
            assert got.status_code == 200 and got.content == data
    out = server.run_cli("fsck", "--grace-seconds", "0")
    assert "removed 0 temporary files, 0 orphan blobs" in out.stdout, out.stdout
    assert "every image has its file" in out.stdout, out.stdout


def test_an_orphan_whose_bytes_are_being_uploaded_again_is_kept(tmp_path: Path) -> None:
    """The race fsck must lose: an upload of an orphan's bytes finds the blob there
    (and refreshes its time) just before fsck moves it aside; fsck puts it back."""
    from localrepo.server.data.storage import BlobStore

    blobs = BlobStore(tmp_path / "blobs", tmp_path / "thumbs")
    data = image_bytes(51)
    sha = hashlib.sha256(data).hexdigest()
    path = _plant_blob(tmp_path, data, age=3600)
    assert blobs.put(sha, data) is False  # already there: the upload only refreshes it
    grace = 900.0
    assert blobs.remove_orphan(sha, lambda mtime: time.time() - mtime >= grace) is None
    assert path.read_bytes() == data
    # Referenced meanwhile (the re-check asks the database): kept too.
    assert blobs.remove_orphan(sha, lambda _mtime: False) is None
    assert path.read_bytes() == data
    assert [p for p in path.parent.iterdir() if p.name.endswith(".part")] == []
    assert blobs.remove_orphan(sha, lambda _mtime: True) == len(data)
    assert not path.exists()
