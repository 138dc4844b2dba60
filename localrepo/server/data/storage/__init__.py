"""Where the image bytes and thumbnails live: the blob store behind ``Storage``
(base.py), in the data folder (local.py, the default) or an S3-compatible bucket
(s3.py), chosen by ``--storage`` (url.py); per-hash locks across processes (locks.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Listed, Storage, StorageFull, StorageUnavailable
from .local import BlobStore, PendingBlob, is_disk_full
from .locks import AdvisoryLocks, BlobLocks, FileRangeLocks, ProcessLocks
from .url import ENV_STORAGE, StorageURL, StorageURLError, parse_storage_url

if TYPE_CHECKING:
    from ...config import Settings
    from ..db import Database

__all__ = [
    "ENV_STORAGE",
    "BlobStore",
    "Listed",
    "PendingBlob",
    "Storage",
    "StorageFull",
    "StorageURL",
    "StorageURLError",
    "StorageUnavailable",
    "is_disk_full",
    "open_storage",
    "parse_storage_url",
]


def blob_locks(settings: Settings, db: Database) -> BlobLocks:
    """Locks every process of this data (the database they share) respects."""
    across: ProcessLocks = (
        FileRangeLocks(settings.data_dir / "blobs.lock")
        if db.is_sqlite
        else AdvisoryLocks(db.autocommit_engine)
    )
    return BlobLocks(across)


def open_storage(settings: Settings, db: Database) -> Storage:
    """The blob store of ``settings.storage_url`` (already checked by the CLI). An S3
    bucket is asked once: `StorageUnavailable` when it does not answer."""
    where = parse_storage_url(settings.storage_url)
    locks = blob_locks(settings, db)
    if where.is_local:
        return BlobStore(
            settings.blobs_dir,
            settings.thumbs_dir,
            locks=locks,
            fast_fsync_seconds=settings.inline_fsync_ms / 1000,
        )
    from .s3 import S3Storage

    store = S3Storage(where, locks)
    store.require()
    return store
