"""The daemon's files in `.localrepo/`: its lock, its pid, and its state for `status`.

daemon.lock   flock'ed by the running watcher for its whole life: one per repository.
              The kernel releases it when the process dies, so a stale lock (a
              SIGKILL, a crash, a reboot) is simply taken over by the next start.
daemon.pid    the running watcher's pid (informative; the lock is the truth).
daemon.json   what `repo daemon status` shows, replaced atomically on every change.
logs/daemon.log  the log (rotated: 5 files of 1 MiB).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localrepo.errors import LocalrepoError

LOCK_NAME = "daemon.lock"
PID_NAME = "daemon.pid"
STATE_NAME = "daemon.json"
LOG_NAME = "daemon.log"
LOG_BYTES = 1 << 20
LOG_BACKUPS = 4


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class DaemonState:
    pid: int = 0
    state: str = "starting"  # starting | idle | syncing | offline | stopping | stopped
    since: str = ""
    mode: str = ""  # inotify | polling
    last_sync: str | None = None
    last_result: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    last_error_at: str | None = None
    offline: bool = False
    next_retry: str | None = None
    failures: int = 0
    syncs: int = 0
    warning: str | None = None

    @classmethod
    def load(cls, state_dir: Path) -> DaemonState | None:
        try:
            data = json.loads((state_dir / STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, state_dir: Path) -> None:
        write_atomic(state_dir / STATE_NAME, json.dumps(asdict(self), indent=2) + "\n")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class DaemonLock:
    """The one-watcher-per-repository lock (an exclusive, non-blocking flock)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = read_pid(self.state_dir)
            raise LocalrepoError(
                f"a watcher already runs for this repository (pid {pid or '?'}); "
                "'repo daemon status' shows it, 'repo daemon stop' ends it."
            ) from None
        self.fd = fd
        write_atomic(self.state_dir / PID_NAME, f"{os.getpid()}\n")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if read_pid(self.state_dir) == os.getpid():
                (self.state_dir / PID_NAME).unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the watcher running for this repository, or None.

    Whoever holds the lock runs; the pid file says who that is. A pid file without a
    lock holder is stale (the process died) and means nothing."""
    import fcntl

    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_pid(state_dir) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None
