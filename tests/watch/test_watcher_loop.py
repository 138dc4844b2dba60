"""The watcher loop in-process, for what a real daemon cannot be made to do on cue: a
sync run that hangs past the stop grace (the fault is injected: a run that waits for an
event the test sets only afterwards)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from support.fakeremote import UnreachableRemote
from support.treebuilder import new_repo
from support.waiting import limit, until, wait_event

from localrepo.repository import Repository
from localrepo.watch.coalesce import FULL, LOCAL
from localrepo.watch.daemon import Watcher, WatchOptions
from localrepo.watch.daemon_files import DaemonState


def test_a_run_hanging_past_the_grace_is_left_to_the_journal(tmp_path: Path):
    repo = Repository(new_repo(tmp_path / "r"))
    exits: list[tuple[int, float]] = []
    started, release = threading.Event(), threading.Event()
    w = Watcher(
        repo,
        None,
        WatchOptions(grace=0.5, debounce=0.1),
        hard_exit=lambda code: exits.append((code, time.monotonic())),
    )

    def hung_sync(_why: str, _hold: frozenset[str], _scope: object) -> None:  # the injected fault
        started.set()
        release.wait(limit(120))  # hangs until the test is done with it

    w._sync = hung_sync  # type: ignore[method-assign]
    runner = threading.Thread(target=w.run)
    runner.start()
    try:
        wait_event(started, what="the first sync run to start")
        asked = time.monotonic()
        w.request_stop()
        runner.join(limit(60))
        assert not runner.is_alive(), "the watcher did not stop"
        # It exited while the run still hung (the run never ended), after the grace.
        assert not release.is_set()
        [(code, when)] = exits
        assert code == 0 and when - asked >= 0.5
    finally:
        release.set()
    st = DaemonState.load(repo.state_dir)
    assert st is not None and st.state == "stopped"


def test_a_quick_run_finishes_before_the_stop(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="localrepo.watch")
    repo = Repository(new_repo(tmp_path / "r"))
    exits: list[int] = []
    started, proceed, done = threading.Event(), threading.Event(), threading.Event()
    w = Watcher(repo, None, WatchOptions(grace=limit(60)), hard_exit=exits.append)

    def quick_sync(_why: str, _hold: frozenset[str], _scope: object) -> None:
        started.set()
        wait_event(proceed, what="the test to let the run finish")
        done.set()

    w._sync = quick_sync  # type: ignore[method-assign]
    runner = threading.Thread(target=w.run)
    runner.start()
    try:
        wait_event(started, what="the first sync run to start")
        w.request_stop()
        # The stop is seen while the run is in progress; then the run ends within its grace.
        until(lambda: "stop requested; letting the" in caplog.text, what="the stop to be seen")
    finally:
        proceed.set()
    runner.join(limit(60))
    assert not runner.is_alive(), "the watcher did not stop"
    assert done.is_set() and exits == []


def test_a_failed_run_scans_its_folders_again_and_a_failed_full_scan_everything(tmp_path: Path):
    root = new_repo(tmp_path / "r")
    (root / "cats").mkdir()
    remote = UnreachableRemote()  # every request fails as with the network down
    w = Watcher(Repository(root), remote, WatchOptions())
    w._sync(LOCAL, frozenset(), frozenset({"cats"}))
    assert remote.calls  # the run reached the remote
    assert w.touched == {"cats"} and w.state.offline
    w.touched.clear()
    w._sync(FULL, frozenset(), None)
    assert w.touched == {""}  # the next run is a full scan again
