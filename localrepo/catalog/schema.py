"""Which catalog schema this build reads, without importing SQLAlchemy or Alembic.

`repo status` must start fast, so the version check reads `alembic_version` with plain
sqlite3 and compares it with these constants. A test keeps them equal to the revisions
in `migrations/versions/`.
"""

from __future__ import annotations

# Oldest first; the last one is head.
KNOWN_REVISIONS: tuple[str, ...] = (
    "0001_initial",
    "0002_stat_sig",
    "0003_fewer_indexes",
    "0004_image_label_without_rowid",
    "0005_damaged_files",
    "0006_remote_listing",
    "0007_file_image_index",
    "0008_quiet_mark",
    "0009_label_watch",
)
HEAD_REVISION = KNOWN_REVISIONS[-1]
