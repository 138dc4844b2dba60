"""What the sweep of the blob store removes, and what it reports (pure; no I/O).

Contract: given the files found under ``blobs/`` and ``thumbs/`` (with their age), the
blob hashes the database refers to, and a grace period, ``plan_sweep`` decides:

- a temp file (``.<name>.<random>.part``: an unfinished write) is removed once older
  than the grace period;
- a final blob no row refers to (an orphan: a crash between the blob's rename and its
  row's commit, or between a delete's commit and the unlink) is removed once older than
  the grace period; a younger one may be an upload committing right now;
- a thumbnail whose blob is gone (or unreferenced, and so removed) goes with it;
- a referenced hash with no blob file is reported, never "fixed": its row stays (data
  safety; docs/server.md, "Checking the data folder").

At start the server sweeps with a grace of 0 (one server process per data folder, and
it is not serving yet); ``localrepo-server fsck`` uses a grace period because a server
may be running. ``report_lines`` is the text ``fsck`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["temp", "blob", "thumb"]

DEFAULT_GRACE_SECONDS = 15 * 60


@dataclass(frozen=True)
class StoredFile:
    path: str
    kind: Kind
    sha256: str  # the blob's hash ("" for a temp file)
    age_seconds: float
    size: int = 0


@dataclass(frozen=True)
class SweepPlan:
    temps: tuple[StoredFile, ...]  # to remove
    orphans: tuple[StoredFile, ...]  # final blobs to remove (after a re-check)
    thumbs: tuple[StoredFile, ...]  # thumbnails of no (remaining) blob
    kept_recent: int  # temp files and orphans within the grace period
    missing: tuple[str, ...]  # referenced hashes without a blob file, sorted


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: the plan's counts after its re-checks."""

    temps_removed: int
    orphans_removed: int
    orphan_bytes: int
    thumbs_removed: int
    kept_recent: int
    missing_images: tuple[str, ...]  # ids of images whose blob file is missing


def kind_of(name: str, in_thumbs: bool) -> tuple[Kind, str] | None:
    """A file name's kind and hash; None for a name the store never writes."""
    if name.startswith(".") and name.endswith(".part"):
        return "temp", ""
    if in_thumbs:
        if name.endswith(".jpg") and _is_sha(name[:-4]):
            return "thumb", name[:-4]
        return None
    return ("blob", name) if _is_sha(name) else None


def _is_sha(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def plan_sweep(
    files: Iterable[StoredFile], referenced: frozenset[str], grace_seconds: float
) -> SweepPlan:
    files = list(files)
    temps: list[StoredFile] = []
    orphans: list[StoredFile] = []
    kept = 0
    blobs_left: set[str] = set()
    for f in files:
        if f.kind == "thumb":
            continue
        if f.kind == "blob" and f.sha256 in referenced:
            blobs_left.add(f.sha256)
        elif f.age_seconds < grace_seconds:
            kept += 1
            if f.kind == "blob":
                blobs_left.add(f.sha256)
        elif f.kind == "temp":
            temps.append(f)
        else:
            orphans.append(f)
    thumbs = tuple(f for f in files if f.kind == "thumb" and f.sha256 not in blobs_left)
    blob_names = {f.sha256 for f in files if f.kind == "blob"}
    missing = tuple(sorted(referenced - blob_names))
    return SweepPlan(tuple(temps), tuple(orphans), thumbs, kept, missing)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def report_lines(result: SweepResult) -> list[str]:
    megabytes = result.orphan_bytes / (1024 * 1024)
    lines = [
        f"removed {_plural(result.temps_removed, 'temporary file', 'temporary files')}, "
        f"{_plural(result.orphans_removed, 'orphan blob', 'orphan blobs')} "
        f"({megabytes:.1f} MiB), "
        f"{_plural(result.thumbs_removed, 'orphan thumbnail', 'orphan thumbnails')}"
    ]
    if result.kept_recent:
        lines.append(
            f"kept {_plural(result.kept_recent, 'recent file', 'recent files')} "
            "(younger than the grace period: an upload may be finishing; run fsck again "
            "later, or with --grace-seconds 0 while no server runs)"
        )
    if result.missing_images:
        n = len(result.missing_images)
        lines.append(
            f"{_plural(n, 'image whose file is missing', 'images whose files are missing')} "
            "(kept; restore the files from a backup, or delete the images):"
        )
        lines.extend(f"  {image_id}" for image_id in result.missing_images)
    else:
        lines.append("every image has its file")
    return lines
