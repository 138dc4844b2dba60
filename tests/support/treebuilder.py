"""Helpers for the catalog, scanner and CLI acceptance tests: real trees, real catalog.

Files are written with an mtime an hour in the past so that the scanner's racy-clean rule
(re-hash anything whose mtime is within RACY_NS of the scan) does not re-hash them on the
next scan; tests that want a racy file pass ``old=False``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from localrepo.catalog.db import catalog_path, connect
from localrepo.cli.main import main as cli_main
from localrepo.repository import init_repository
from localrepo.scan.hashing import hash_bytes
from localrepo.scan.scanner import Scanner, ScanReport
from support.imagegen import image_bytes

SIZE = (32, 24)
HOUR_NS = 3600 * 1_000_000_000
REPO_ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "LOCALREPO_TOKEN": ""}


def img(seed: int, fmt: str = "JPEG") -> bytes:
    return image_bytes(seed, size=SIZE, fmt=fmt)


def age(path: Path, seconds_ago: float = 3600) -> None:
    """Give `path` an mtime in the past (without following symlinks)."""
    t = time.time_ns() - int(seconds_ago * 1e9)
    os.utime(path, ns=(t, t), follow_symlinks=False)


def write(root: Path, rel: str, data: bytes | str, *, old: bool = True) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    if old:
        age(path)
    return path


def write_image(root: Path, rel: str, seed: int, *, old: bool = True, fmt: str = "JPEG") -> str:
    """Write a small real image; returns its content hash."""
    data = img(seed, fmt)
    write(root, rel, data, old=old)
    return hash_bytes(data)


def new_repo(path: Path, task: str = "t", task_type: str = "multi_class") -> Path:
    return init_repository(path, task=task, task_type=task_type).root


def db(root: Path) -> sqlite3.Connection:
    return connect(catalog_path(root))


def scan(root: Path, **kw) -> ScanReport:
    conn = db(root)
    try:
        return Scanner(root, conn, workers=1).scan(**kw)
    finally:
        conn.close()


def task_ids(root: Path) -> dict[str, int]:
    conn = db(root)
    try:
        return dict(conn.execute("SELECT name, id FROM task"))
    finally:
        conn.close()


def labels_by_path(root: Path, task: str | None = None) -> dict[str, dict[str, float | None]]:
    """{file path: {label: value}} from the LOCAL image_label rows (every copy listed)."""
    conn = db(root)
    try:
        sql = (
            "SELECT f.path, l.name, il.value FROM file f"
            " JOIN image_label il ON il.image_id = f.image_id AND il.state = 'local'"
            " JOIN label l ON l.id = il.label_id JOIN task t ON t.id = il.task_id"
        )
        args: tuple = ()
        if task is not None:
            sql += " WHERE t.name = ?"
            args = (task,)
        out: dict[str, dict[str, float | None]] = defaultdict(dict)
        for path, name, value in conn.execute(sql, args):
            out[path][name] = value
        return dict(out)
    finally:
        conn.close()


def image_labels(root: Path) -> dict[tuple[str, str], dict[str, float | None]]:
    """{(task name, image hash): {label: value}} from the LOCAL image_label rows."""
    conn = db(root)
    try:
        out: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
        for task, h, name, value in conn.execute(
            "SELECT t.name, i.hash, l.name, il.value FROM image_label il"
            " JOIN image i ON i.id = il.image_id JOIN label l ON l.id = il.label_id"
            " JOIN task t ON t.id = il.task_id WHERE il.state = 'local'"
        ):
            out[(task, h)][name] = value
        return dict(out)
    finally:
        conn.close()


def task_labels(root: Path) -> dict[str, set[tuple[str, str]]]:
    """{task name: {(label name, label type)}} from the LOCAL task_label rows."""
    conn = db(root)
    try:
        out: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for task, name, ltype in conn.execute(
            "SELECT t.name, l.name, l.type FROM task_label tl JOIN task t ON t.id = tl.task_id"
            " JOIN label l ON l.id = tl.label_id WHERE tl.state = 'local'"
        ):
            out[task].add((name, ltype))
        return dict(out)
    finally:
        conn.close()


def files(root: Path) -> dict[str, tuple[str | None, str | None]]:
    """{path: (image hash or None, reason or None)} from the `file` table."""
    conn = db(root)
    try:
        return {
            p: (h, r)
            for p, h, r in conn.execute(
                "SELECT f.path, i.hash, f.reason FROM file f LEFT JOIN image i ON i.id = f.image_id"
            )
        }
    finally:
        conn.close()


def image_hashes(root: Path) -> set[str]:
    conn = db(root)
    try:
        return {r[0] for r in conn.execute("SELECT hash FROM image")}
    finally:
        conn.close()


def journal(root: Path) -> list[tuple[str, str | None, str | None]]:
    """[(kind, path, old_path)] of every journal entry, oldest first."""
    conn = db(root)
    try:
        return [
            tuple(r)  # type: ignore[misc]
            for r in conn.execute("SELECT kind, path, old_path FROM journal ORDER BY id")
        ]
    finally:
        conn.close()


def journal_count(root: Path) -> int:
    conn = db(root)
    try:
        return conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    finally:
        conn.close()


def kinds(report: ScanReport) -> list[tuple[str, str | None, str | None]]:
    return sorted((c.kind, c.path, c.old_path) for c in report.changes)


def run_repo(
    *args: str, cwd: Path | None = None, check_traceback: bool = True, **kw
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess; never prints a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "localrepo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=REPO_ENV,
        timeout=120,
        **kw,
    )
    if check_traceback:
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stdout, proc.stdout
    return proc


def repo_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """The real CLI entry point in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        cli_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err
