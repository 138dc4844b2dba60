"""The sweep of the blob store: at server start and in ``localrepo-server fsck``.

Shell around ``fsckplan.plan_sweep`` (what to remove and report): it lists the blob
store's files or objects (fixing the files' modes at start), asks the database which
blobs images refer to (data/images.py), removes what the plan says (orphan blobs only
after a re-check against the database: ``Storage.remove_orphan``), and names the images
whose blob is missing, which it never deletes. The same for the data folder and for a
bucket (data/storage/). See docs/server.md, "Checking the data folder".
"""

from __future__ import annotations

import logging
import os
import time

from .data import images
from .data.db import Database
from .data.storage import Storage
from .fsckplan import StoredFile, SweepResult, kind_of, plan_sweep

log = logging.getLogger("localrepo.server")


def _scan(blobs: Storage, now: float, fix_modes: bool) -> list[StoredFile]:
    found: list[StoredFile] = []
    for path, in_thumbs, mtime, size in blobs.listing(fix_modes=fix_modes):
        kind = kind_of(os.path.basename(path), in_thumbs)
        if kind is not None:
            age = max(0.0, now - mtime)
            found.append(StoredFile(path, kind[0], kind[1], age, size))
    return found


def sweep(
    db: Database, blobs: Storage, grace_seconds: float, *, fix_modes: bool = False
) -> SweepResult:
    """Remove leftovers older than ``grace_seconds``; report what was done and found.

    The files are listed before the database is asked, so a blob renamed into place
    after the listing is not seen, and one listed whose row commits before the question
    is referenced; one in between is younger than the grace period (or a duplicate's
    blob, whose time ``put`` refreshes) or caught by the re-check."""
    files = _scan(blobs, time.time(), fix_modes)
    plan = plan_sweep(files, images.referenced_blobs(db), grace_seconds)
    temps = 0
    for f in plan.temps:
        temps += blobs.remove_listed(f.path)
    orphans = orphan_bytes = 0
    for f in plan.orphans:

        def may_remove(mtime: float, sha: str = f.sha256) -> bool:
            return time.time() - mtime >= grace_seconds and not images.blob_referenced(db, sha)

        removed = blobs.remove_orphan(f.sha256, may_remove)
        if removed is not None:
            orphans += 1
            orphan_bytes += removed
    thumbs = 0
    for f in plan.thumbs:
        if not blobs.exists(f.sha256):
            thumbs += blobs.remove_listed(f.path)
    # A blob listed as missing may have been renamed into place (with its row
    # committed) after the listing: only those still absent now are missing.
    absent = [sha for sha in plan.missing if not blobs.exists(sha)]
    missing = tuple(images.images_of_blobs(db, absent)) if absent else ()
    return SweepResult(temps, orphans, orphan_bytes, thumbs, plan.kept_recent, missing)


def sweep_at_start(db: Database, blobs: Storage) -> SweepResult | None:
    """The sweep before the server listens: no upload is under way (one server process
    per data folder), so no grace period; modes are fixed on the way. Not for a bucket
    (None): other servers may share it, and listing a large one would hold up the start;
    ``localrepo-server fsck --storage`` sweeps it (docs/server.md, "Object storage")."""
    if blobs.local_path("0" * 64) is None:
        log.info("image files in %s: `localrepo-server fsck --storage` sweeps it", blobs.shown)
        return None
    result = sweep(db, blobs, 0.0, fix_modes=True)
    if result.temps_removed or result.orphans_removed or result.thumbs_removed:
        log.warning(
            "removed %d temporary file(s) and %d orphan blob(s) (%d bytes) left by an "
            "interrupted run, and %d orphan thumbnail(s)",
            result.temps_removed,
            result.orphans_removed,
            result.orphan_bytes,
            result.thumbs_removed,
        )
    if result.missing_images:
        log.error(
            "%d image(s) have no file in the data folder (run `localrepo-server fsck` "
            "for their ids)",
            len(result.missing_images),
        )
    return result
