"""The watchdog adapter: filesystem events in, plain `FsEvent`s out (into a queue).

inotify by default; `PollingObserver` with `poll=True` (network and container mounts,
where inotify sees nothing). An inotify limit that is too low is reported with the
sysctl that raises it, and the watcher falls back to polling. A kernel queue overflow
(events were lost) is passed on, so the daemon runs a full reconciling scan.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrepo.watch.coalesce import CREATED, DELETED, MODIFIED, MOVED, FsEvent, is_relevant

log = logging.getLogger("localrepo.watch")

OVERFLOW = FsEvent("overflow", "")  # a queue item: events were lost, rescan everything
LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)

WATCH_LIMIT_HINT = (
    "the inotify watch limit is too low for this tree ({error}); falling back to polling "
    "(slower, more CPU). Raise the limit with: sudo sysctl fs.inotify.max_user_watches=524288 "
    "(and fs.inotify.max_user_instances=512); make it permanent in /etc/sysctl.d/."
)


def limit_message(exc: OSError) -> str:
    return WATCH_LIMIT_HINT.format(error=exc.strerror or exc)


@dataclass
class Watching:
    observer: Any
    mode: str  # inotify | polling
    warning: str | None = None  # why polling was chosen over inotify


class _Handler:
    """A watchdog event handler that turns events into repository-relative FsEvents.

    Irrelevant paths (the state folder, temp files) are dropped here, in watchdog's
    thread, so the catalog's own writes cost one string check each."""

    def __init__(self, root: Path, out: queue.Queue[FsEvent]) -> None:
        self.root = os.fspath(root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self.out = out

    def _rel(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if text == self.root:
            return ""
        if not text.startswith(self.prefix):
            return None
        return text[len(self.prefix) :].replace(os.sep, "/")

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        is_dir = bool(event.is_directory)
        src = self._rel(event.src_path)
        if kind == "moved":
            dest = self._rel(event.dest_path)
            if src is None or dest is None:
                return
            if is_relevant(src, is_dir) or is_relevant(dest, is_dir):
                self.out.put(FsEvent(MOVED, src, dest, is_dir))
            return
        mapped = {
            "created": CREATED,
            "modified": MODIFIED,
            "closed": MODIFIED,
            "deleted": DELETED,
        }.get(kind)
        if mapped is None or src is None or not is_relevant(src, is_dir):
            return
        if mapped == MODIFIED and is_dir:
            return  # a folder's mtime moves with every entry; its entries have events
        self.out.put(FsEvent(mapped, src, None, is_dir))


class _OverflowHook(logging.Handler):
    """watchdog reports an inotify queue overflow only in a log line: listen for it."""

    def __init__(self, out: queue.Queue[FsEvent]) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.out.put(OVERFLOW)


def _inotify() -> Any:
    from watchdog.observers import Observer

    return Observer()


def _polling(interval: float) -> Any:
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=interval)


def start_watching(
    root: Path,
    out: queue.Queue[FsEvent],
    *,
    poll: bool = False,
    poll_interval: float = 1.0,
    inotify_factory: Callable[[], Any] = _inotify,
    polling_factory: Callable[[float], Any] = _polling,
) -> Watching:
    """Start an observer of `root` (recursive) feeding `out`. The factories are there to
    inject faults (an inotify limit) in tests."""
    handler = _Handler(root, out)
    warning = None
    if not poll:
        observer = inotify_factory()
        observer.schedule(handler, os.fspath(root), recursive=True)
        try:
            observer.start()
        except OSError as exc:
            if exc.errno not in LIMIT_ERRNOS:
                raise
            warning = limit_message(exc)
            log.warning(warning)
            _stop_quietly(observer)
        else:
            hook = _OverflowHook(out)
            for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
                logging.getLogger(name).addHandler(hook)
            return Watching(observer, "inotify")
    observer = polling_factory(poll_interval)
    observer.schedule(handler, os.fspath(root), recursive=True)
    observer.start()
    return Watching(observer, "polling", warning)


def _stop_quietly(observer: Any) -> None:
    try:
        observer.stop()
    except Exception:  # it never started: nothing to stop
        pass


def stop_watching(watching: Watching, timeout: float = 2.0) -> None:
    watching.observer.stop()
    watching.observer.join(timeout)
