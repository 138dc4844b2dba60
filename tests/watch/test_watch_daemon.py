"""The real daemon (`repo daemon start`, a detached process) against a real server:
files dropped, moved, deleted and saved atomically on disk reach the server; changes
made on the server reach the disk."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from support.synchelp import Clone, World, image_hash, img
from support.waiting import limit

from .watchhelp import FAST, Daemon, until, watch_process


@pytest.fixture
def daemon(world: World, repo: Clone) -> Iterator[Daemon]:
    """A running daemon whose first full sync has created the task and sent seed.jpg."""
    d = Daemon(repo)
    d.start()
    until(labelled(world, image_hash(1), {"cats"}), what="the first sync")
    yield d
    d.cleanup()


def drop(clone: Clone, rel: str, seed: int) -> str:
    """Copy an image into the tree the way a user does (a fresh mtime, no aging)."""
    path = clone.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(img(seed))
    return image_hash(seed)


def labelled(world: World, h: str, labels: set[str]):  # type: ignore[no-untyped-def]
    def check():  # type: ignore[no-untyped-def]
        row = world.remote.by_hash().get(h)
        return row if row is not None and set(row.labels) == labels else None

    return check


LABELS = ("cats", "dogs", "owls", "bats")


def test_copied_file_appears_labelled_on_the_server(world: World, repo: Clone, daemon: Daemon):
    h = drop(repo, "dogs/rex.jpg", 2)
    row = until(labelled(world, h, {"dogs"}), what="dogs/rex.jpg labelled on the server")
    assert row.meta.get("original_file_name", "rex.jpg").endswith("rex.jpg")
    st = until(
        lambda: (s := daemon.status())["last_sync"] and s["pending"] == 0 and s,
        what="a sync on record and nothing pending",
    )
    assert st["running"] and st["pid"] == daemon.pid() and st["mode"] == "inotify"
    assert st["last_error"] is None and st["conflicts"] == 0
    assert st["since"]


def test_moved_file_is_relabelled_without_a_new_upload(world: World, repo: Clone, daemon: Daemon):
    h = drop(repo, "cats/tom.jpg", 3)
    first = until(labelled(world, h, {"cats"}), what="cats/tom.jpg uploaded")
    count = len(world.remote.images())
    repo.move("cats/tom.jpg", "dogs/tom.jpg")
    moved = until(labelled(world, h, {"dogs"}), what="tom.jpg relabelled dogs")
    assert moved.id == first.id, daemon.log()  # relabelled, not deleted and uploaded again
    assert len(world.remote.images()) == count
    assert daemon.logged_uploads(2) == 2  # seed.jpg at start, then tom.jpg once


def test_deleted_file_is_unlinked(world: World, repo: Clone, daemon: Daemon):
    h = drop(repo, "cats/gone.jpg", 4)
    until(labelled(world, h, {"cats"}), what="cats/gone.jpg uploaded")
    (repo.root / "cats/gone.jpg").unlink()

    def unlinked() -> bool:
        row = world.remote.by_hash().get(h)
        return row is None or not row.labels

    until(unlinked, what="gone.jpg unlinked from cats")
    assert image_hash(1) in world.remote.by_hash()  # the other image is untouched


def test_atomic_save_is_one_upload(world: World, repo: Clone, daemon: Daemon):
    """An editor's save: write a temp file (slowly, in pieces), rename it into place."""
    data = img(5)
    tmp = repo.root / "cats" / "drawing.jpg.tmp"
    with open(tmp, "wb") as fh:
        for start in range(0, len(data), 64):
            fh.write(data[start : start + 64])
            fh.flush()
    os.rename(tmp, repo.root / "cats" / "drawing.jpg")
    h = image_hash(5)
    until(labelled(world, h, {"cats"}), what="drawing.jpg uploaded")
    # The run that uploaded it writes its log line last: wait for that line, not the
    # server (which shows the upload first).
    assert daemon.logged_uploads(2) == 2  # seed.jpg at start, then drawing.jpg once
    daemon.idle()
    assert len(world.remote.images()) == 2  # seed.jpg and drawing.jpg, once each
    # An atomic save over an existing file: its new content replaces the old on the server.
    tmp.write_bytes(img(6))
    os.rename(tmp, repo.root / "cats" / "drawing.jpg")
    until(labelled(world, image_hash(6), {"cats"}), what="the saved content uploaded")
    until(lambda: not getattr(world.remote.by_hash().get(h), "labels", None), what="old unlinked")
    assert daemon.logged_uploads(3) == 3  # and the new content once


def test_server_side_changes_appear_on_disk(world: World, repo: Clone):
    daemon = Daemon(repo)
    daemon.start(verbose=True)
    try:
        _server_side_changes_appear_on_disk(world, repo, daemon)
    finally:
        daemon.cleanup()


def _server_side_changes_appear_on_disk(world: World, repo: Clone, daemon: Daemon) -> None:
    seed = until(labelled(world, image_hash(1), {"cats"}), what="the first sync")
    world.remote.post("label/", {"name": "birds", "type": "category"})
    task = repo.remote_task_id()
    world.remote.post(f"task/{task}/add-label/", {"label_id": world.remote.label_id("birds")})
    world.remote.relabel(seed.id, "cats", "birds")
    until(lambda: repo.files_of(image_hash(1)) == ["birds/seed.jpg"], what="seed.jpg in birds/")
    # The engine's own move is not echoed back as a local edit: the image stays as it is.
    until(
        lambda: "match the catalog (the engine's own writes)" in daemon.log(),
        what="the engine's own move to be logged as an echo",
    )
    daemon.idle()
    assert set(world.remote.by_hash()[image_hash(1)].labels) == {"birds"}
    assert daemon.uploads() == 1  # seed.jpg at start, nothing since
    assert "changed path(s) in cats/" not in daemon.log()
    # The folder the engine made (birds/) is an event like any other folder's (folders
    # are never echoes); its rescan finds only the engine's file: nothing to send.
    assert "INFO synced (local changes)" not in daemon.log()


def test_a_burst_of_2000_files_all_arrive_once_each(world: World, repo: Clone, daemon: Daemon):
    blobs = {f"{LABELS[i % 4]}/b{i:04d}.jpg": img(1000 + i) for i in range(2000)}
    for label in LABELS:
        (repo.root / label).mkdir(exist_ok=True)
    for rel, data in blobs.items():  # copied at once, as fast as Python writes files
        (repo.root / rel).write_bytes(data)
    want = {image_hash(1000 + i): {LABELS[i % 4]} for i in range(2000)}
    want[image_hash(1)] = {"cats"}

    def all_labelled() -> bool:
        rows = world.remote.images()
        return len(rows) == 2001 and {r.hash: set(r.labels) for r in rows} == want

    until(all_labelled, 120, "2,001 images labelled on the server", step=0.5)
    assert len(world.remote.by_hash()) == 2001  # asserts no content was uploaded twice
    daemon.idle()
    assert daemon.logged_uploads(2001) == 2001


def test_foreground_watch_with_polling_stops_on_ctrl_c(world: World, repo: Clone):
    proc = watch_process(repo, "--poll", "--poll-interval", "0.5", *FAST)
    try:
        h = drop(repo, "dogs/polled.jpg", 8)
        until(labelled(world, h, {"dogs"}), what="polled.jpg labelled on the server")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=limit(60))  # a limit: it stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "(polling every 0.5s;" in err and "SIGINT received; stopping" in err and "stopped" in err
    assert "Traceback" not in err
    assert not (repo.root / ".localrepo" / "daemon.pid").exists()


def test_a_broken_config_is_reported_and_retried_not_spun_on(
    world: World, repo: Clone, daemon: Daemon
):
    config = repo.root / ".localrepo" / "config.toml"
    good = config.read_text()
    broken = time.monotonic()
    config.write_text("[sync\nthis is not toml")
    h = drop(repo, "dogs/waits.jpg", 9)
    st = until(lambda: (s := daemon.status())["last_error"] and s, what="the error in status")
    seconds = time.monotonic() - broken
    assert "config.toml" in st["last_error"] and "cannot read the configuration" in st["last_error"]
    assert st["running"] and st["failures"] >= 1
    # Backed off (--max-backoff 1: an attempt a second at most), not spinning. A busy
    # machine only makes fewer attempts, never more.
    assert st["failures"] <= seconds + 2, (st["failures"], seconds)
    config.write_text(good)
    until(labelled(world, h, {"dogs"}), what="waits.jpg sent once the config is readable")
    assert daemon.log().count("cannot read the configuration") == 1  # logged once, not per retry
    assert "answers again" not in daemon.log()  # it was never offline
