"""`localrepo-server backup DIR` while the server serves, and `restore DIR` (issue 20,
item 3): uploads keep going during the backup, the server is killed, the backup is
restored into a fresh data folder and a server started on it has every image
acknowledged before the backup started, byte for byte."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support.waiting import limit

from .helpers import b64, image_bytes, upload


def _cli(server: Any, *args: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LOCALREPO_SERVER_DATA", None)
    env.pop("LOCALREPO_SERVER_DATABASE_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "localrepo.server.cli",
            *args,
            "--data",
            str(data or server.data_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=limit(120),
    )


def _keep_uploading(server: Any, stop: threading.Event, sent: list[str]) -> None:
    seed = 5000
    with httpx.Client(base_url=server.api_url, headers=server.client().headers, timeout=30) as c:
        while not stop.is_set():
            try:
                r = c.post("training-image/", json={"base64": b64(image_bytes(seed))})
            except httpx.HTTPError:
                return
            if r.status_code == 201:
                sent.append(r.json()["id"])
            seed += 1


def test_backup_while_uploading_then_restore_after_a_kill_finds_every_acknowledged_image(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory()
    api = server.client()
    before = {}
    for seed in range(60):
        data = image_bytes(seed, size=(80, 60))
        before[upload(api, data)["id"]] = data
    stop = threading.Event()
    during: list[str] = []
    uploader = threading.Thread(target=_keep_uploading, args=(server, stop, during))
    uploader.start()
    try:
        backup_dir = tmp_path / "backup-monday"
        out = _cli(server, "backup", str(backup_dir))
    finally:
        stop.set()
        uploader.join(timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "backed up the sqlite database" in out.stdout
    assert during, "the uploads went on during the backup"
    cursor = api.get("training-image/changes/").json()["cursor"]
    assert (backup_dir / "localrepo-backup.json").exists()
    for path in backup_dir.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    server.stop(kill=True)

    fresh = tmp_path / "restored" / "data"
    out = _cli(server, "restore", str(backup_dir), data=fresh)
    assert out.returncode == 0, out.stdout + out.stderr
    restored = type(server)(fresh)
    restored.start()
    try:
        with restored.client() as c:
            for image_id, data in before.items():
                r = c.get(f"training-image/{image_id}/")
                assert r.status_code == 200, (image_id, r.text)
                got = httpx.get(r.json()["img_path"], timeout=30)
                assert got.status_code == 200 and got.content == data
            # A clone's cursor of before the restore would skip what changed between
            # the backup and it, once new uploads take the counter past it: refused,
            # and the clone lists in full.
            for seed in range(len(during) + 5):
                upload(c, image_bytes(10_000 + seed, size=(80, 60)))
            assert c.get("training-image/changes/", params={"since": cursor}).status_code == 410
        out = restored.run_cli("fsck", "--grace-seconds", "0")
        assert "removed 0 temporary files, 0 orphan blobs" in out.stdout, out.stdout
        assert "every image has its file" in out.stdout, out.stdout
    finally:
        restored.stop()


def test_restore_refuses_a_non_empty_data_folder_and_a_folder_that_is_no_backup(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory()
    kept = upload(server.client(), image_bytes(77))
    backup_dir = tmp_path / "b"
    assert _cli(server, "backup", str(backup_dir)).returncode == 0
    again = _cli(server, "backup", str(backup_dir))
    assert again.returncode == 2 and "is not empty" in again.stderr
    server.stop()

    out = _cli(server, "restore", str(backup_dir))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "is not empty" in out.stderr and "--force" in out.stderr
    assert "Traceback" not in out.stderr
    not_backup = tmp_path / "nothing"
    not_backup.mkdir()
    out = _cli(server, "restore", str(not_backup), data=tmp_path / "new")
    assert out.returncode == 2 and "not a finished localrepo-server backup" in out.stderr
    assert not (tmp_path / "new").exists()

    out = _cli(server, "restore", str(backup_dir), "--force")
    assert out.returncode == 0, out.stdout + out.stderr
    aside = [p for p in server.data_dir.parent.iterdir() if ".replaced-" in p.name]
    assert len(aside) == 1 and (aside[0] / "server.db").exists()  # moved, not deleted
    server.start()
    assert server.client().get(f"training-image/{kept['id']}/").status_code == 200


def test_backup_and_restore_on_postgresql(
    server_factory: Callable[..., Any], postgres: Any, tmp_path: Path
) -> None:
    server = server_factory(database_url=postgres.new_database())
    api = server.client()
    images = {}
    for seed in range(10):
        data = image_bytes(900 + seed)
        images[upload(api, data)["id"]] = data
    url = ["--database-url", server.database_url]
    backup_dir = tmp_path / "pg-backup"
    out = _cli(server, "backup", str(backup_dir), *url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "backed up the postgresql database" in out.stdout
    assert (backup_dir / "database.pgdump").stat().st_size > 0
    server.stop(kill=True)

    target = postgres.new_database()
    fresh = tmp_path / "pg-restored" / "data"
    out = _cli(server, "restore", str(backup_dir), "--database-url", target, data=fresh)
    assert out.returncode == 0, out.stdout + out.stderr
    again = _cli(server, "restore", str(backup_dir), "--database-url", target, data=tmp_path / "x")
    assert again.returncode == 2 and "already holds localrepo-server tables" in again.stderr
    restored = type(server)(fresh, database_url=target)
    restored.start()
    try:
        with restored.client() as c:
            for image_id, data in images.items():
                r = c.get(f"training-image/{image_id}/")
                assert r.status_code == 200, (image_id, r.text)
                assert httpx.get(r.json()["img_path"], timeout=30).content == data
    finally:
        restored.stop()
