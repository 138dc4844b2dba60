"""The sweep of the data folder: at server start and in ``localrepo-server fsck``.

Shell around ``fsckplan.plan_sweep`` (what to remove and report): it lists the blob
store's files (fixing their modes at start), asks the database which blobs images
refer to (data/images.py), removes what the plan says (orphan blobs only after a
re-check against the database: ``BlobStore.remove_orphan``), and names the images whose
blob file is missing, which it never deletes. See docs/server.md, "Checking the data
folder".
"""

from __future__ import annotations

import logging
import os
import time

from .data import images
from .data.db import Database
from .data.storage import BlobStore
from .fsckplan import StoredFile, SweepResult, kind_of, plan_sweep

log = logging.getLogger("localrepo.server")


def _scan(blobs: BlobStore, now: float, fix_modes: bool) -> list[StoredFile]:
    found: list[StoredFile] = []
    for path, in_thumbs, st in blobs.stored_files(fix_modes=fix_modes):
        kind = kind_of(os.path.basename(path), in_thumbs)
        if kind is not None:
            age = max(0.0, now - st.st_mtime)
            found.append(StoredFile(path, kind[0], kind[1], age, st.st_size))
    return found


def sweep(
    db: Database, blobs: BlobStore, grace_seconds: float, *, fix_modes: bool = False
) -> SweepResult:
    """Remove leftovers older than ``grace_seconds``; report what was done and found.

    The files are listed before the database is asked, so a blob renamed into place
    after the listing is not seen, and one listed whose row commits before the question
    is referenced; one in between is younger than the grace period (or a duplicate's
    blob, whose time ``BlobStore.put`` refreshes) or caught by the re-check."""
    files = _scan(blobs, time.time(), fix_modes)
    plan = plan_sweep(files, images.referenced_blobs(db), grace_seconds)
    temps = 0
    for f in plan.temps:
        try:
            os.unlink(f.path)
            temps += 1
        except FileNotFoundError:
            pass  # finished (renamed) or removed meanwhile
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
        if not os.path.exists(str(blobs.blob_path(f.sha256))):
            try:
                os.unlink(f.path)
                thumbs += 1
            except FileNotFoundError:
                pass
    # A blob listed as missing may have been renamed into place (with its row
    # committed) after the listing: only those still absent now are missing.
    absent = [sha for sha in plan.missing if not os.path.exists(blobs.blob_path(sha))]
    missing = tuple(images.images_of_blobs(db, absent)) if absent else ()
    return SweepResult(temps, orphans, orphan_bytes, thumbs, plan.kept_recent, missing)


def sweep_at_start(db: Database, blobs: BlobStore) -> SweepResult:
    """The sweep before the server listens: no upload is under way (one server process
    per data folder), so no grace period; modes are fixed on the way."""
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
