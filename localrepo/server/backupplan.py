"""The backup's manifest and the refusals of ``backup`` and ``restore`` (pure; no I/O).

Contract: a backup folder holds ``localrepo-backup.json`` (written last: a folder
without it is an unfinished backup), the database copy (``server.db`` or
``database.pgdump``) and ``blobs/<aa>/<sha256>``. ``manifest_text`` and
``read_manifest`` write and read the manifest (``read_manifest`` raises `ValueError`
saying what is wrong); ``folder_problem`` says why a folder may not be written into.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

MANIFEST = "localrepo-backup.json"
FORMAT = 1
SQLITE_COPY = "server.db"
PG_COPY = "database.pgdump"


@dataclass(frozen=True)
class Manifest:
    created: str  # ISO 8601, UTC: when the database snapshot was taken
    database: str  # "sqlite" or "postgresql"
    blobs: int  # blob files copied
    missing_blobs: int  # referenced by the snapshot, deleted before they were copied
    format: int = FORMAT


def manifest_text(manifest: Manifest) -> str:
    return json.dumps(asdict(manifest), indent=2) + "\n"


def read_manifest(text: str) -> Manifest:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"{MANIFEST} is not a format-{FORMAT} localrepo-server backup")
    if raw.get("database") not in ("sqlite", "postgresql"):
        raise ValueError(f"{MANIFEST}: unknown database {raw.get('database')!r}")
    try:
        return Manifest(
            created=str(raw["created"]),
            database=str(raw["database"]),
            blobs=int(raw["blobs"]),
            missing_blobs=int(raw["missing_blobs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{MANIFEST}: missing or bad field ({exc})") from None


def folder_problem(folder: str, entries: list[str], *, force: bool, what: str) -> str | None:
    """Why ``folder`` (holding ``entries``) may not receive ``what``; None: it may."""
    if not entries or force:
        return None
    return (
        f"{folder} is not empty; {what} goes into an empty or new folder "
        "(pass --force to move what is there aside first)"
    )
