"""The cluster's processes on this machine: PostgreSQL, the object store when there is
one, the API processes and the training workers, each with its own log file.

`Process` runs `localrepo-server ARGS` (the arguments of clusterkit/commands.py) with
the cluster's environment; `Postgres` is the tests' throwaway cluster
(tests/support/pgcluster.py); `ObjectStore` is moto's S3 server on loopback, started only
when the installed server takes `--storage` and moto is installed (`s3_available`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVER = (sys.executable, "-m", "localrepo.server.cli")


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it from here
        try:
            self.proc = subprocess.Popen(
                [*SERVER, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, and reap it: nothing of it is left to finish its work."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the graceful stop), then SIGKILL past `timeout`; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_server_cli(args: list[str], env: dict[str, str]) -> str:
    """`localrepo-server ARGS` to the end; its stdout (a failure raises with its output)."""
    proc = subprocess.run(
        [*SERVER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"localrepo-server {args[0]} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def wait_ready(port: int, proc: Process, timeout: float = 120.0) -> None:
    """Until the process answers `/readyz` with 200 (its database and storage answer)."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.log_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} was not ready in {timeout:.0f} s")
        time.sleep(0.1)


def server_takes_storage() -> bool:
    """Whether this server's `serve --help` lists `--storage` (object storage)."""
    from localrepo.server.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    return "--storage" in out.getvalue()


def s3_available() -> bool:
    return importlib.util.find_spec("moto") is not None and server_takes_storage()


class ObjectStore:
    """moto's S3 server on a loopback port, with one bucket; any key pair is accepted."""

    BUCKET = "localrepo-cluster"

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.log_path = root / "s3.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ObjectStore:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it from here
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.put(f"{self.endpoint}/{self.BUCKET}", timeout=2.0)
                if r.status_code < 300:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the S3 server did not start (see {self.log_path})")
            time.sleep(0.2)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {
            "LOCALREPO_STORAGE": f"s3://{self.BUCKET}/blobs?endpoint={self.endpoint}"
            "&region=us-east-1",
            "AWS_ACCESS_KEY_ID": "cluster",
            "AWS_SECRET_ACCESS_KEY": "cluster-secret",
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def base_environment() -> dict[str, str]:
    """This process's environment without any localrepo or S3 setting of the caller's."""
    drop = ("LOCALREPO_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONUNBUFFERED"] = "1"
    return env
