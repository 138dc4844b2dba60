"""``localrepo-server fsck``, ``backup DIR`` and ``restore DIR``: the data folder's
commands (docs/server.md, "Checking the data folder"; docs/backup.md). server/cli.py
adds their parsers with `add_parsers` and runs them with `run`.

Exit codes: 0 done; 1 ``fsck`` found images whose file is missing, or a backup or
restore failed; 2 a folder that may not be written (not empty, no backup) or no data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import datadir
from .config import Settings
from .fsckplan import DEFAULT_GRACE_SECONDS

COMMANDS = ("fsck", "backup", "restore")


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "fsck",
        help="remove leftovers of interrupted writes; report images whose file is missing",
    )
    common(p)
    p.add_argument(
        "--grace-seconds",
        type=_seconds,
        default=DEFAULT_GRACE_SECONDS,
        metavar="S",
        help=f"spare temporary and orphan files younger than this, which a running server "
        f"may be finishing (default {DEFAULT_GRACE_SECONDS}; 0 when no server runs)",
    )
    p = sub.add_parser(
        "backup", help="copy the database and the image files to DIR, while the server runs"
    )
    common(p)
    p.add_argument("dir", type=Path, metavar="DIR", help="an empty or new folder")
    p.add_argument(
        "--force", action="store_true", help="move what is in DIR aside to DIR.replaced-TIME"
    )
    p = sub.add_parser("restore", help="bring a backup back into an empty data folder")
    common(p)
    p.add_argument("dir", type=Path, metavar="DIR", help="a folder `backup` made")
    p.add_argument(
        "--force",
        action="store_true",
        help="move a non-empty data folder aside to DATA.replaced-TIME first (and replace "
        "the tables of --database-url)",
    )


def _fsck(settings: Settings, grace: float) -> int:
    from .data.storage import open_storage
    from .fsck import sweep
    from .fsckplan import report_lines

    db = datadir.database(settings)
    try:
        datadir.make_private(settings)
        blobs = open_storage(settings, db)
        result = sweep(db, blobs, grace)
    finally:
        db.dispose()
    for line in report_lines(result):
        print(line)
    return 1 if result.missing_images else 0


def _backup(settings: Settings, dest: Path, force: bool) -> int:
    from .backup import backup

    datadir.database(settings).dispose()  # refuse where there is no data
    manifest = backup(settings, dest, force=force)
    print(
        f"backed up the {manifest.database} database (as of {manifest.created}) and "
        f"{manifest.blobs} image files to {dest}"
    )
    if manifest.missing_blobs:
        print(
            f"{manifest.missing_blobs} image files were deleted before they could be "
            "copied (their images were deleted after the snapshot)",
            file=sys.stderr,
        )
    return 0


def _restore(settings: Settings, source: Path, force: bool) -> int:
    from .backup import restore

    done = restore(settings, source, force=force)
    if done.moved_aside is not None:
        print(f"moved the data folder that was there to {done.moved_aside}")
    where = "the database of --database-url" if settings.database_url else settings.data_dir
    print(f"restored the backup of {done.manifest.created} ({done.blobs} image files) into {where}")
    if done.bad_blobs:
        print(
            f"error: {done.bad_blobs} image files of the backup are damaged (their bytes "
            "do not match their name) and were not restored; run `localrepo-server fsck` "
            "for the images concerned",
            file=sys.stderr,
        )
        return 1
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from .backup import BackupRefused
    from .data.dumps import DumpError
    from .data.storage import StorageUnavailable, parse_storage_url

    if args.command != "fsck" and not parse_storage_url(settings.storage_url).is_local:
        print(
            f"error: {args.command} copies the data folder's image files; with --storage "
            "s3://... back up the bucket with the object store's own tools (versioning, "
            'replication) and the database with its own (docs/server.md, "Object storage")',
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "fsck":
            return _fsck(settings, args.grace_seconds)
        if args.command == "backup":
            return _backup(settings, args.dir, args.force)
        return _restore(settings, args.dir, args.force)
    except (BackupRefused, StorageUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DumpError, OSError) as exc:
        print(f"error: {args.command} failed: {exc}", file=sys.stderr)
        return 1
