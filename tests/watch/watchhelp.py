"""Helpers of the watcher tests: drive `repo daemon` / `repo watch` in real processes,
and wait for conditions with a deadline instead of fixed sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from support.synchelp import Clone

T = TypeVar("T")

# Short timers keep the tests fast: act on a file after 0.3 s of quiet, pull every 1 s.
FAST = ("--debounce", "0.3", "--interval", "1", "--max-backoff", "1")


def until(check: Callable[[], T], timeout: float = 30.0, what: str = "", step: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last {last!r}")


@dataclass
class Daemon:
    clone: Clone
    args: tuple[str, ...] = FAST
    started: list[int] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.clone.root / ".localrepo"

    def start(
        self,
        *extra: str,
        expect: int = 0,
        env: dict[str, str] | None = None,
        verbose: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        pre = ("-v",) if verbose else ()
        proc = self.clone.run(*pre, "daemon", "start", *self.args, *extra, expect=expect, env=env)
        if expect == 0:
            self.started.append(self.pid())
        return proc

    def pid(self) -> int:
        return int((self.state_dir / "daemon.pid").read_text())

    def status(self) -> dict[str, Any]:
        return json.loads(self.clone.run("daemon", "status", "--json").stdout)

    def stop(self) -> subprocess.CompletedProcess[str]:
        return self.clone.run("daemon", "stop")

    def log(self) -> str:
        path = self.state_dir / "logs" / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        until(lambda: not alive(pid), 10, "the killed daemon to be gone")

    def cleanup(self) -> None:
        for pid in self.started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        assert "Traceback" not in self.log(), self.log()


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie of ours counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def watch_process(clone: Clone, *args: str) -> subprocess.Popen[str]:
    """`repo watch ARGS` in the foreground, as a child of the test."""
    return subprocess.Popen(
        [sys.executable, "-m", "localrepo", "-C", str(clone.root), "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clone.env,
    )
