"""Helpers of the watcher tests: drive `repo daemon` / `repo watch` in real processes,
and wait for conditions (tests/support/waiting.py) instead of fixed sleeps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.synchelp import Clone
from support.waiting import limit, until

__all__ = ["FAST", "Daemon", "alive", "until", "watch_process"]

# Short timers keep the tests fast: act on a file after 0.3 s of quiet, pull every 1 s.
FAST = ("--debounce", "0.3", "--interval", "1", "--max-backoff", "1")

# How long `repo daemon stop` may wait for the daemon to end by itself before it kills
# it: far above the daemon's own stop grace (8 s), so that a slow machine is no reason
# for a kill; a test that sees exit 0 knows the daemon ended on its own.
STOP_WAIT = 60.0


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
        """`repo daemon stop`, expecting it to end on its own (exit 0, no kill)."""
        return self.clone.run("daemon", "stop", "--timeout", f"{limit(STOP_WAIT):g}")

    def log(self) -> str:
        path = self.state_dir / "logs" / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def uploads(self) -> int:
        """Images the daemon says it uploaded, summed over its log."""
        return sum(int(n) for n in re.findall(r"uploaded (\d+)", self.log()))

    def logged_uploads(self, n: int) -> int:
        """Wait until the log reports `n` uploads, then return what it reports (more
        than `n` is a failure for the caller to see). A run writes its log line last,
        after the server and the catalog show its work, so the log is awaited."""
        until(lambda: self.uploads() >= n, what=f"the daemon's log to report {n} upload(s)")
        return self.uploads()

    def idle(self) -> dict[str, Any]:
        """Wait until the daemon is idle (no run in progress) with nothing pending."""
        return until(
            lambda: (s := self.status())["state"] == "idle" and s["pending"] == 0 and s,
            what="the daemon to be idle with nothing pending",
        )

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        until(lambda: not alive(pid), what=f"the killed daemon (pid {pid}) to be gone")

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
