"""The watchdog adapter on real files: inotify events become repository-relative hints,
the state folder and temp names are dropped, and an inotify limit falls back to polling."""

from __future__ import annotations

import errno
import os
import queue
import time
from pathlib import Path

import pytest
from support.waiting import limit
from watchdog.observers import Observer

from localrepo.watch.coalesce import CREATED, MOVED, FsEvent
from localrepo.watch.observer import start_watching, stop_watching


def collect(q: queue.Queue[FsEvent], want, what: str, timeout: float = 60.0) -> list[FsEvent]:  # type: ignore[no-untyped-def]
    """Take events from `q` until `want(seen)`; after `timeout` (scaled) fail, naming
    `what` and the events seen."""
    seen: list[FsEvent] = []
    allowed = limit(timeout)
    deadline = time.monotonic() + allowed
    while time.monotonic() < deadline:
        try:
            seen.append(q.get(timeout=0.05))
        except queue.Empty:
            pass
        if want(seen):
            return seen
    raise AssertionError(f"gave up after {allowed:g}s waiting for {what}; events seen: {seen}")


def test_inotify_events_are_relative_and_filtered(tmp_path: Path):
    (tmp_path / ".localrepo").mkdir()
    (tmp_path / "cats").mkdir()
    q: queue.Queue[FsEvent] = queue.Queue()
    w = start_watching(tmp_path, q)
    try:
        assert w.mode == "inotify" and w.warning is None
        (tmp_path / ".localrepo" / "catalog.db").write_bytes(b"x")
        (tmp_path / "cats" / ".a.jpg.localrepo-tmp").write_bytes(b"x")
        (tmp_path / "cats" / "a.jpg.part").write_bytes(b"x")
        os.rename(tmp_path / "cats" / "a.jpg.part", tmp_path / "cats" / "a.jpg")
        (tmp_path / "cats" / "b.jpg").write_bytes(b"y")
        seen = collect(q, lambda s: any(e.path == "cats/b.jpg" for e in s), "cats/b.jpg's event")
    finally:
        stop_watching(w)
    assert FsEvent(MOVED, "cats/a.jpg.part", "cats/a.jpg") in seen
    assert FsEvent(CREATED, "cats/b.jpg") in seen
    for e in seen:
        assert not e.path.startswith(".localrepo") and "localrepo-tmp" not in e.path
        assert e.kind == MOVED or not e.path.endswith(".part")


class FullInotify(Observer):  # type: ignore[misc, valid-type]
    """inotify with the user's watch limit used up (the kernel's ENOSPC)."""

    def start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_an_inotify_limit_falls_back_to_polling_and_says_how_to_raise_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    q: queue.Queue[FsEvent] = queue.Queue()
    w = start_watching(tmp_path, q, poll_interval=0.1, inotify_factory=FullInotify)
    try:
        assert w.mode == "polling"
        assert "sysctl fs.inotify.max_user_watches=" in (w.warning or "")
        assert "sysctl fs.inotify.max_user_watches=" in caplog.text
        (tmp_path / "a.jpg").write_bytes(b"x")
        collect(q, lambda s: FsEvent(CREATED, "a.jpg") in s, "a.jpg created, by polling")
    finally:
        stop_watching(w)


def test_other_inotify_errors_are_not_hidden(tmp_path: Path):
    class Broken(Observer):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            raise OSError(errno.EACCES, "permission denied")

    with pytest.raises(OSError, match="permission denied"):
        start_watching(tmp_path, queue.Queue(), inotify_factory=Broken)


def test_poll_mode_sees_changes(tmp_path: Path):
    q: queue.Queue[FsEvent] = queue.Queue()
    w = start_watching(tmp_path, q, poll=True, poll_interval=0.1)
    try:
        assert w.mode == "polling" and w.warning is None
        (tmp_path / "dogs").mkdir()
        (tmp_path / "dogs" / "x.png").write_bytes(b"x")
        collect(q, lambda s: FsEvent(CREATED, "dogs/x.png") in s, "dogs/x.png created")
    finally:
        stop_watching(w)
