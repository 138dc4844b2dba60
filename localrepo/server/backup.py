"""``localrepo-server backup DIR`` and ``restore DIR`` (docs/backup.md).

Backup, while the server serves: the database first, as one snapshot (data/dumps.py:
SQLite's online backup, or ``pg_dump``), then every blob that snapshot refers to,
copied with its hash checked (blobs never change in place: a blob is written once under
its hash, and removed only when no image refers to it). An image committed after the
snapshot is not in the backup; one deleted after it keeps its row, and its blob if the
blob was still there (``missing_blobs`` counts those that were not). The manifest
(backupplan.py) is written last, so a folder without one is an unfinished backup.

Restore, into an empty data folder (or, with ``--force``, after moving what is there
aside to ``<folder>.replaced-<time>``; nothing is deleted): the database, then the blobs,
each checked against its hash. Every file is 0600 and every folder 0700.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .backupplan import (
    MANIFEST,
    PG_COPY,
    SQLITE_COPY,
    Manifest,
    folder_problem,
    manifest_text,
    read_manifest,
)
from .config import Settings
from .data import changes, dumps, images
from .data.db import Database

_CHUNK = 1024 * 1024


class BackupRefused(Exception):
    """A backup or restore that would overwrite something, or a folder that is no backup
    (exit 2); the message says what to do."""


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    blobs: int  # blob files restored
    bad_blobs: int  # blob files of the backup whose bytes no longer match their name
    moved_aside: Path | None


def _prepare_folder(folder: Path, *, force: bool, what: str) -> Path | None:
    """``folder``, empty and 0700; what was there moved aside (``--force``): where."""
    entries = sorted(os.listdir(folder)) if folder.is_dir() else []
    problem = folder_problem(str(folder), entries, force=force, what=what)
    if problem:
        raise BackupRefused(problem)
    moved = None
    if entries:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        moved = folder.with_name(f"{folder.name}.replaced-{stamp}")
        folder.rename(moved)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return moved


def _copy_checked(source: Path, dest: Path, sha256: str | None) -> bool:
    """Copy ``source`` to ``dest`` (temp name, fsync, rename); False (nothing written)
    when ``source`` is gone or its bytes do not match ``sha256``."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.urandom(8).hex()}.part")
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(tmp, "xb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        return False
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink()
        return False
    os.replace(tmp, dest)
    return True


def _blob(root: Path, sha: str) -> Path:
    return root / "blobs" / sha[:2] / sha


def _copy_blobs(shas: frozenset[str], source_root: Path, dest_root: Path) -> tuple[int, int]:
    copied = missing = 0
    for sha in sorted(shas):
        if _copy_checked(_blob(source_root, sha), _blob(dest_root, sha), sha):
            copied += 1
        else:
            missing += 1
    return copied, missing


def _referenced(url: str) -> frozenset[str]:
    db = Database(url)
    try:
        return images.referenced_blobs(db)
    finally:
        db.dispose()


def backup(settings: Settings, dest: Path, *, force: bool = False) -> Manifest:
    os.umask(0o077)
    _prepare_folder(dest, force=force, what="a backup")
    url = settings.effective_database_url
    created = datetime.now(UTC).isoformat(timespec="seconds")
    source = dumps.sqlite_path(url)
    if source is not None:
        dumps.sqlite_snapshot(source, dest / SQLITE_COPY)
        shas = _referenced(f"sqlite:///{(dest / SQLITE_COPY).resolve()}")
        kind = "sqlite"
    else:
        dumps.pg_dump(url, dest / PG_COPY)
        # The dump's snapshot is older than this question: an image committed since is
        # copied too (harmless), one deleted since has lost its blob either way.
        shas = _referenced(url)
        kind = "postgresql"
    copied, missing = _copy_blobs(shas, settings.data_dir, dest)
    manifest = Manifest(created=created, database=kind, blobs=copied, missing_blobs=missing)
    tmp = dest / f".{MANIFEST}.part"
    tmp.write_text(manifest_text(manifest))
    os.replace(tmp, dest / MANIFEST)
    return manifest


def _forget_cursors(url: str) -> None:
    """Clients' change-feed cursors are of the database as it went on after the backup:
    a new feed id makes each of them list in full (data/changes.py)."""
    db = Database(url)
    try:
        changes.renew_feed_id(db)
    finally:
        db.dispose()


def restore(settings: Settings, source: Path, *, force: bool = False) -> Restored:
    os.umask(0o077)
    try:
        manifest = read_manifest((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupRefused(
            f"{source} holds no {MANIFEST}: it is not a finished localrepo-server backup"
        ) from None
    except ValueError as exc:
        raise BackupRefused(f"{source}: {exc}") from None
    url = settings.effective_database_url
    target = dumps.sqlite_path(url)
    if (target is None) != (manifest.database == "postgresql"):
        raise BackupRefused(
            f"{source} holds a {manifest.database} database; point --database-url at "
            f"{'a PostgreSQL database' if manifest.database == 'postgresql' else 'nothing (SQLite in the data folder)'}"
        )
    if target is None and Database.exists(url) and not force:
        raise BackupRefused(
            "the database of --database-url already holds localrepo-server tables; "
            "restore goes into an empty database (pass --force to replace them)"
        )
    moved = _prepare_folder(settings.data_dir, force=force, what="a restore")
    if target is not None:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _copy_checked(source / SQLITE_COPY, target, None):
            raise BackupRefused(f"{source} has no {SQLITE_COPY}")
    else:
        dumps.pg_restore(url, source / PG_COPY)
    _forget_cursors(url)
    shas = frozenset(
        p.name for p in (source / "blobs").glob("??/*") if p.is_file() and len(p.name) == 64
    )
    copied, bad = _copy_blobs(shas, source, settings.data_dir)
    return Restored(manifest, copied, bad, moved)
