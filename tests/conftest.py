"""Shared fixtures: a REAL localrepo-server running in a subprocess.

    live_server        session-scoped server (one per xdist worker), started with --dev
    server_factory     function-scoped: start your own server with extra `serve` flags
    account            a fresh user (own Default workspace, own token) on live_server
    api                an httpx.Client for `account`, based at .../recognition/v2/

A `LiveServer` has `.url` ("http://127.0.0.1:PORT/"), `.api_url`, `.token` (the --dev
user's), `.port`, `.data_dir`, `.database_url`, `.log_path`, and:

    new_account(name=None) -> Account    another user + token (+ its Default workspace)
    create_workspace(username, name) -> workspace id
    client(token=None) -> httpx.Client   based at .api_url, with the token header
    stop(kill=False) / start() / restart(kill=False)   same data dir and same port
    run_cli(*args) -> CompletedProcess   `localrepo-server ARGS --data DIR ...`
    log_text() -> str                    everything the server printed

The server package is imported lazily, so tests that do not use these fixtures pay
nothing for them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from support.waiting import limit

# Hypothesis times each example (a 200 ms deadline) and the generation of the first ones
# (the too_slow health check): on a busy machine both fail tests that are correct. Speed
# is the benchmarks' business; tests with their own settings inherit this profile.
hypothesis_settings.register_profile(
    "localrepo", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("localrepo")

# No test reads or writes the user's own settings and tokens (credentials.py,
# userconfig.py): every `repo` a test runs, in-process or as a subprocess (which inherits
# this), uses a throwaway config folder, unless the test gives its own.
USER_CONFIG_DIR = tempfile.mkdtemp(prefix="localrepo-test-config-")
os.environ["LOCALREPO_CONFIG_DIR"] = USER_CONFIG_DIR

# Limits, not waits: a server that starts in 2 s is waited for 2 s (scaled by
# LOCALREPO_TEST_TIMEOUT_SCALE, see tests/support/waiting.py).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Account:
    """A user of a live server with one API token."""

    username: str
    token: str
    url: str  # the server's base URL

    @property
    def api_url(self) -> str:
        return self.url + "recognition/v2/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers=self.headers, timeout=30.0, **kwargs)


@dataclass
class LiveServer:
    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    database_url: str = ""
    port: int = 0
    url: str = ""
    token: str = ""
    username: str = "dev"
    log_path: Path = field(init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _clients: list[httpx.Client] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'server.db').resolve()}"

    # -- process -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.url + "recognition/v2/"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("LOCALREPO_SERVER_DATA", None)
        env["LOCALREPO_SERVER_DATABASE_URL"] = self.database_url
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = START_TIMEOUT) -> LiveServer:
        if self.running:
            raise RuntimeError("the server is already running")
        ready = self.data_dir.parent / f"{self.data_dir.name}-ready-{uuid.uuid4().hex}.json"
        cmd = [
            sys.executable,
            "-m",
            "localrepo.server.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir),
            "--dev",
            "--dev-user",
            self.username,
            "--ready-file",
            str(ready),
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it from here
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.data_dir.parent,
                start_new_session=True,
            )
        finally:
            log.close()
        allowed = limit(timeout)
        deadline = time.monotonic() + allowed
        while not ready.exists():  # the server writes its ready file once it listens
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"localrepo-server exited with {self._proc.returncode}:\n{self.log_text()}"
                )
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise RuntimeError(
                    f"localrepo-server did not write its ready file in {allowed:g}s:\n"
                    + self.log_text()
                )
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        ready.unlink()
        self.port = int(info["port"])
        self.url = info["url"]
        if not self.token:
            self.token = info["token"]
        return self

    def stop(self, kill: bool = False, timeout: float = STOP_TIMEOUT) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=limit(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=limit(timeout))

    def restart(self, kill: bool = False) -> LiveServer:
        self.stop(kill=kill)
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- accounts --------------------------------------------------------------------------

    def _db(self) -> Any:
        from localrepo.server.data.db import Database

        db = Database(self.database_url)
        db.create_all()
        return db

    def new_account(self, name: str | None = None) -> Account:
        """Create a user (with its Default workspace) and a token, straight in the
        server's database (the same code as `localrepo-server user/token create`)."""
        from localrepo.server.data import accounts

        username = name or f"user-{uuid.uuid4().hex[:12]}"
        db = self._db()
        try:
            accounts.create_user(db, username)
            token = accounts.create_token(db, username, name="test").token
        finally:
            db.dispose()
        return Account(username=username, token=token, url=self.url)

    def create_workspace(self, username: str, name: str) -> str:
        from localrepo.server.data import accounts

        db = self._db()
        try:
            return str(accounts.create_workspace(db, name, username).id)
        finally:
            db.dispose()

    @property
    def account(self) -> Account:
        """The --dev user's account."""
        return Account(username=self.username, token=self.token, url=self.url)

    def client(self, token: str | None = None) -> httpx.Client:
        client = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Token {token or self.token}"},
            timeout=30.0,
        )
        self._clients.append(client)
        return client

    def run_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `localrepo-server ARGS` against this server's data folder."""
        return subprocess.run(
            [sys.executable, "-m", "localrepo.server.cli", *args, "--data", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self._env(),
            cwd=self.data_dir.parent,
            check=check,
            timeout=limit(60),
        )


# LOCALREPO_TEST_SERVER_DB=postgres: every server these fixtures start keeps its rows in
# a throwaway PostgreSQL cluster (tests/support/pgcluster.py) instead of SQLite.
SERVER_DB = os.environ.get("LOCALREPO_TEST_SERVER_DB", "sqlite")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster (one per xdist worker); `.new_database()` -> URL."""
    from support.pgcluster import PostgresCluster

    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A real S3-compatible server on 127.0.0.1 (moto's server mode; one per xdist
    worker): tests/support/s3server.py."""
    from support.s3server import MotoServer

    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh bucket; the fake credentials in the environment (servers inherit it)."""
    from support.s3server import credentials_env

    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    return s3_server.new_bucket()


def _default_database_url(request: pytest.FixtureRequest) -> str:
    if SERVER_DB == "postgres":
        return str(request.getfixturevalue("postgres").new_database())
    return ""  # SQLite in the server's data folder


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("live-server") / "data",
        database_url=_default_database_url(request),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LiveServer]]:
    """`server_factory("--rate-limit", "5/s")` starts a dedicated server."""
    started: list[LiveServer] = []

    def make(*extra_args: str, database_url: str = "") -> LiveServer:
        server = LiveServer(
            tmp_path / f"server-{len(started)}",
            extra_args=list(extra_args),
            database_url=database_url or _default_database_url(request),
        )
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def account(live_server: LiveServer) -> Account:
    return live_server.new_account()


@pytest.fixture
def api(account: Account) -> Iterator[httpx.Client]:
    with account.client() as client:
        yield client


# -- the simulation's counts (tests/sim) ---------------------------------------------------
# Each simulated seed appends its counts to LOCALREPO_SIM_STATS (a JSON line); the
# controller sets it (xdist workers inherit it) and prints the totals at the end.


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get("LOCALREPO_SIM_STATS"):
        return
    fd, path = tempfile.mkstemp(prefix="localrepo-sim-", suffix=".jsonl")
    os.close(fd)
    os.environ["LOCALREPO_SIM_STATS"] = path
    config._sim_stats_tmp = path  # type: ignore[attr-defined]


def sim_totals(path: str) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for key, value in json.loads(line).items():
                if isinstance(value, dict):
                    bucket = totals.setdefault(key, {})
                    for k, v in value.items():
                        bucket[k] = bucket.get(k, 0) + v
                else:
                    totals[key] = totals.get(key, 0) + value
    return totals


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    path = os.environ.get("LOCALREPO_SIM_STATS", "")
    if hasattr(config, "workerinput") or not path or not os.path.getsize(path):
        return
    totals = sim_totals(path)
    fuzz = {key: totals.pop(key) for key in list(totals) if key.startswith("fuzz_")}
    if fuzz:  # tests/server/test_server_fuzz.py
        terminalreporter.write_line(
            "fuzz: {fuzz_examples} examples, {fuzz_requests} requests, {fuzz_5xx} answers "
            "5xx".format(**fuzz)
        )
    if "seeds" not in totals:
        return
    terminalreporter.write_line(
        "simulation: {seeds} seeds, {steps} steps ({edits} clone edits, {server_edits} "
        "server edits, {syncs} syncs), {crashes} crashes, {faults} HTTP faults".format(**totals)
    )
    terminalreporter.write_line(f"  faults: {totals.get('fault_kinds')}")
    terminalreporter.write_line(f"  crash points: {totals.get('crash_points')}")
    shown = {"seeds", "steps", "edits", "server_edits", "syncs", "crashes", "faults"}
    shown |= {"fault_kinds", "crash_points"}
    for key, value in totals.items():  # the rest, whatever the simulation counts
        if key not in shown:
            terminalreporter.write_line(f"  {key.replace('_', ' ')}: {value}")


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    shutil.rmtree(USER_CONFIG_DIR, ignore_errors=True)
    path = getattr(config, "_sim_stats_tmp", None)
    if path:
        os.environ.pop("LOCALREPO_SIM_STATS", None)
        os.unlink(path)
