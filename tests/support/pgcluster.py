"""A throwaway PostgreSQL cluster for the server's tests (a real server, not a mock).

`PostgresCluster.start()` runs `initdb` into a fresh folder and starts `postgres` on a
free loopback port with fsync off (the data is thrown away). As root, PostgreSQL
refuses to run, so the cluster then runs as the `postgres` system user. Each
`new_database()` is an empty database with its SQLAlchemy URL (psycopg 3 driver).

    LOCALREPO_TEST_SERVER_DB=postgres pytest tests/server

runs every server test against PostgreSQL instead of SQLite (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_tool(name: str) -> str:
    for folder in PG_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: install the Debian package "
            "'postgresql' (.ci/run does) to run the PostgreSQL tests"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="localrepo-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None  # the system user the cluster runs as, when root
        self._seq = 0

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = list(cmd)
        if self.user is not None:
            full = ["runuser", "-u", self.user, "--", *full]
        return subprocess.run(full, check=check, capture_output=True, text=True, timeout=120)

    def start(self, preload: tuple[str, ...] = ()) -> PostgresCluster:
        """``preload``: libraries for shared_preload_libraries (benchmarks/costs.py counts
        statements with pg_stat_statements)."""
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            pg_tool("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        if preload:
            options += f" -c shared_preload_libraries={','.join(preload)}"
        self._run(
            pg_tool("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def new_database(self) -> str:
        import psycopg

        self._seq += 1
        name = f"t{self._seq}_{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
