"""A consistent copy of the database while it serves, and its way back (server/backup.py).

SQLite: the online backup API (``sqlite3.Connection.backup``) copies every page in one
step, a snapshot as of one transaction, while other connections keep reading and
writing. PostgreSQL: ``pg_dump`` (one snapshot, custom format) and ``pg_restore``, which
must be on PATH. A password is never on their command line (``ps`` shows it to every
user): it goes in ``PGPASSWORD``, the URL without it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class DumpError(Exception):
    """The copy could not be made or restored (the message says why; no password)."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database or "")


def sqlite_snapshot(source: Path, dest: Path) -> None:
    """Copy the live database ``source`` to the new file ``dest`` (fsynced)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)  # every page in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    _fsync(dest)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """(a libpq URL without the password, the environment that carries it)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DumpError(f"{name} is not on PATH; install the PostgreSQL client tools")
    return found


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # Its own words (libpq does not print passwords), last lines only.
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise DumpError(f"{what} failed ({tail or f'exit {done.returncode}'})")


def pg_dump(url: str, dest: Path) -> None:
    plain, env = _libpq(url)
    _run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dest}", plain], env, "pg_dump"
    )
    _fsync(dest)


def pg_restore(url: str, source: Path) -> None:
    plain, env = _libpq(url)
    cmd = [_tool("pg_restore"), "--no-owner", "--clean", "--if-exists", f"--dbname={plain}"]
    _run([*cmd, str(source)], env, "pg_restore")
