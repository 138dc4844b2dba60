"""The daemon's life: one per repository, stale locks, graceful stops, SIGKILL and crash
recovery, the remote going away and coming back, and `repo sync` meanwhile."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.synchelp import Clone, World, image_hash, img
from support.waiting import limit

from .watchhelp import Daemon, alive, until


@pytest.fixture
def daemon(repo: Clone) -> Iterator[Daemon]:
    d = Daemon(repo)
    yield d
    d.cleanup()


def drop_many(
    clone: Clone, n: int, first_seed: int = 100, prefix: str = "m"
) -> dict[str, set[str]]:
    """Copy n images into two label folders; returns {hash: {label}}."""
    want = {}
    for label in ("cats", "dogs"):
        (clone.root / label).mkdir(exist_ok=True)
    for i in range(n):
        label = ("cats", "dogs")[i % 2]
        (clone.root / f"{label}/{prefix}{i:04d}.jpg").write_bytes(img(first_seed + i))
        want[image_hash(first_seed + i)] = {label}
    return want


def remote_labels(world: World) -> dict[str, set[str]]:
    return {h: set(r.labels) for h, r in world.remote.by_hash().items()}


def converged(world: World, want: dict[str, set[str]]):  # type: ignore[no-untyped-def]
    def check() -> bool:
        rows = world.remote.images()
        if len(rows) != len(want):
            return False
        return {r.hash: set(r.labels) for r in rows} == want

    return check


def test_one_daemon_per_repository_and_a_stale_lock_is_taken_over(repo: Clone, daemon: Daemon):
    # A pid file left by a process that died: the lock is free, so start takes over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (daemon.state_dir / "daemon.pid").write_text(f"{dead.pid}\n")
    (daemon.state_dir / "daemon.lock").touch()
    assert daemon.status()["running"] is False
    daemon.start()
    first = daemon.pid()
    assert first != dead.pid and alive(first)
    refused = daemon.start(expect=1)
    assert "already runs" in refused.stderr and str(first) in refused.stderr
    watch = repo.run("watch", expect=1)  # nor a foreground watcher next to it
    assert "already runs" in watch.stderr
    st = until(
        lambda: (s := daemon.status())["state"] == "idle" and s["last_sync"] and s,
        what="the first sync on record",
    )
    assert st["running"] and st["pid"] == first
    out = daemon.stop()  # exit 0: it ended on its own, `daemon stop` did not kill it
    assert "daemon stopped" in out.stderr
    assert not alive(first)
    st = daemon.status()
    assert st["running"] is False and st["state"] == "not running" and "note" not in st
    assert "stopped" in daemon.log().splitlines()[-1]
    assert "not running" in repo.run("daemon", "stop").stderr
    text = repo.run("daemon", "status").stdout
    assert "daemon: not running" in text and "last sync: 20" in text


def test_kill_9_mid_upload_then_start_again_converges_without_duplicates(
    world: World, repo: Clone, daemon: Daemon
):
    daemon.start()
    until(lambda: world.remote.by_hash().get(image_hash(1)), what="the first sync")
    want = drop_many(repo, 400)
    want[image_hash(1)] = {"cats"}
    count = until(
        lambda: len(world.remote.images()) >= 20 and len(world.remote.images()),
        60,
        "uploads under way",
        step=0.05,
    )
    daemon.kill()
    at_kill = len(world.remote.images())
    assert at_kill < len(want), "the daemon finished before the kill; nothing was tested"
    st = daemon.status()
    assert st["running"] is False and "ended without stopping" in st["note"]
    daemon.start()
    until(converged(world, want), 90, "all 401 images labelled, once each", step=0.5)
    assert count >= 20
    daemon.stop()
    repo.verify()


def test_a_crash_right_after_an_upload_is_answered_leaves_no_duplicate(
    world: World, repo: Clone, daemon: Daemon
):
    """The worst moment: the server stored the image, the catalog does not know it yet."""
    want = drop_many(repo, 30)
    want[image_hash(1)] = {"cats"}
    daemon.start(env={"LOCALREPO_CRASH_AT": "after_http:5"})
    first = daemon.started[-1]
    until(lambda: not alive(first), what="the crash point to kill the daemon")
    assert 0 < len(world.remote.images()) < len(want)
    daemon.start()
    until(converged(world, want), 60, "all 31 images labelled, once each")
    daemon.stop()
    repo.verify()


def test_stop_during_a_sync_is_graceful_and_the_next_start_finishes(
    world: World, repo: Clone, daemon: Daemon
):
    daemon.start()
    until(lambda: world.remote.by_hash().get(image_hash(1)), what="the first sync")
    want = drop_many(repo, 200, first_seed=5000)
    want[image_hash(1)] = {"cats"}
    until(lambda: len(world.remote.images()) > 1, 60, "uploads under way", step=0.05)
    pid = daemon.pid()
    daemon.stop()  # exit 0: it ended on its own (its run's grace), `daemon stop` did not kill it
    assert not alive(pid)
    daemon.start()
    until(converged(world, want), 90, "all 201 images labelled, once each", step=0.5)


def test_server_stopped_and_restarted_mid_run_loses_nothing(server_factory, tmp_path):
    server = server_factory()
    account = server.new_account()
    world = World(account.url, account.token, tmp_path)
    repo = world.init("photos", "animals")
    repo.write("cats/seed.jpg", 1)
    d = Daemon(repo)
    try:
        d.start()
        want = drop_many(repo, 6)
        want[image_hash(1)] = {"cats"}
        until(converged(world, want), 60, "the first 7 images")
        world.remote.close()
        server.stop()
        # Offline: moves, deletes and new files are journalled, not lost.
        repo.move("cats/m0000.jpg", "dogs/m0000.jpg")
        want[image_hash(100)] = {"dogs"}
        (repo.root / "dogs/m0001.jpg").unlink()
        want[image_hash(101)] = set()
        more = drop_many(repo, 4, first_seed=900, prefix="offline")
        want.update(more)
        # Between its retries (each a run, "syncing" while it tries) the state is "offline".
        st = until(
            lambda: (s := d.status())["state"] == "offline" and s["pending"] >= 6 and s,
            what="status to show the daemon offline with the changes pending",
        )
        assert st["running"] and st["offline"]
        assert "unreachable" in st["last_error"] and st["next_retry"]
        assert (
            "offline" in repo.run("daemon", "status").stdout
            or "unreachable" in repo.run("daemon", "status").stdout
        )
        server.start()
        world.remote = type(world.remote)(server.url, account.token)

        def done() -> bool:
            rows = {r.hash: set(r.labels) for r in world.remote.images()}
            expected = {h: labels for h, labels in want.items() if labels}
            return {h: v for h, v in rows.items() if v} == expected

        until(done, 60, "the offline changes on the server")
        # The pull timer runs a sync every second: wait for a moment between two runs
        # (idle, not syncing; and not offline any more).
        st = d.idle()
        assert st["last_error"] is None and not st["offline"]
        assert "the remote answers again" in d.log()
        d.stop()
        repo.verify()
    finally:
        d.cleanup()
        world.remote.close()


def test_repo_sync_waits_for_the_lock_while_the_daemon_runs(
    world: World, repo: Clone, daemon: Daemon
):
    daemon.start()
    until(lambda: world.remote.by_hash().get(image_hash(1)), what="the first sync")
    # Hold the repository lock as the daemon does during a sync run.
    fd = os.open(repo.root / ".localrepo" / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    err_path = repo.root.parent / "sync.err"
    try:
        repo.write("dogs/late.jpg", 7)
        with open(err_path, "w") as err_file:
            sync = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "localrepo",
                    "-C",
                    str(repo.root),
                    "sync",
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
                env=repo.env,
            )
        until(
            lambda: "waiting for this repository's lock" in err_path.read_text(),
            what="repo sync to say it waits for the lock",
        )
        assert sync.poll() is None  # it waits for the lock
    finally:
        os.close(fd)
    out, _ = sync.communicate(timeout=limit(120))
    err = err_path.read_text()
    assert sync.returncode == 0, err
    assert f"the daemon runs here as pid {daemon.pid()}" in err
    json.loads(out)
    # Both the daemon and `repo sync` ran on one catalog; it is whole and in step.
    until(lambda: world.remote.by_hash().get(image_hash(7)), what="late.jpg on the server")
    daemon.idle()
    daemon.stop()
    repo.verify()
    assert len(world.remote.by_hash()) == 2
