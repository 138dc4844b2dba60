"""What the benchmark scripts share: byte-compiling the package, starting a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The sources measured: this checkout, or another version's (benchmarks/compare.py).
CODE = Path(os.environ.get("BENCH_CODE", ROOT))
SERVER = [sys.executable, "-m", "localrepo.server.cli"]


def compile_package() -> None:
    """Byte-compile localrepo first: with PYTHONDONTWRITEBYTECODE set, every command would
    otherwise compile its modules again, and that is not what a user's install does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(CODE / "localrepo")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start(cmd: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start `cmd` (a server writing `ready` when it listens); its output goes to `log`."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"could not start {cmd}:\n{log.read_text()}")
        time.sleep(0.02)
    time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def start_dev_server(work: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A quiet `serve --dev` (handcrafted features) on a free port, its data in
    ``work/data``; ``extra``: more flags. Returns the process and its ready file."""
    ready = work / "server.json"
    cmd = [*SERVER, "serve", "--port", "0", "--data", str(work / "data"), "--dev"]
    cmd += ["--no-access-log", "--log-level", "warning", "--backend", "handcrafted"]
    cmd += ["--ready-file", str(ready), *extra]
    return start(cmd, ready, work / "server.log")
