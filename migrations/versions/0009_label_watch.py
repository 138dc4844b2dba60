"""label watch: which images' labels may differ since the last sync; three lookups indexed

Revision ID: 0009_label_watch
Revises: 0008_quiet_mark
Create Date: 2026-12-07

`repo status` lists the images whose SYNCED and LOCAL labels differ. Comparing every
image's costs about a second at a million (docs/benchmarks.md), after any change. A
watched task (`label_watch`) keeps in `label_dirty` every image whose labels may
differ: those that differed when the watch began, and, by the triggers below, every
image whose SYNCED or LOCAL label rows were written since, whoever wrote them (a
cascade fires them too). Status compares only those (catalog/label_watch.py).

Indexes for what a scan looks up in a large catalog: each folder's stat signatures by
path range (covering: scan/statmerge.py), the rows that must not settle (a partial
index: racy or invalid rows are few; its literal is catalog/files.py's UNSETTLED),
files by inode (a move keeps it), the journal by image (where a deleted file was last
seen), the damaged files (a partial index: they are few).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009_label_watch"
down_revision: str | None = "0008_quiet_mark"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only the two states status compares (catalog/sides.py): a sync writes REMOTE rows
# of images whose other states it leaves alone.
_DIRTY = (
    "INSERT OR IGNORE INTO label_dirty (task_id, image_id) SELECT {row}.task_id,"
    " {row}.image_id WHERE {row}.state IN ('synced', 'local')"
    " AND EXISTS (SELECT 1 FROM label_watch WHERE task_id = {row}.task_id);"
)


def upgrade() -> None:
    op.create_table(
        "label_watch",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_table(
        "label_dirty",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "image_id"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "CREATE TRIGGER label_dirty_insert AFTER INSERT ON image_label BEGIN "
        + _DIRTY.format(row="NEW")
        + " END"
    )
    op.execute(
        "CREATE TRIGGER label_dirty_delete AFTER DELETE ON image_label BEGIN "
        + _DIRTY.format(row="OLD")
        + " END"
    )
    op.execute(
        "CREATE TRIGGER label_dirty_update AFTER UPDATE ON image_label BEGIN "
        + _DIRTY.format(row="OLD")
        + " "
        + _DIRTY.format(row="NEW")
        + " END"
    )
    op.create_index("ix_file_path_stat_sig", "file", ["path", "stat_sig"], unique=False)
    op.create_index(
        "ix_file_unsettled",
        "file",
        ["path"],
        unique=False,
        sqlite_where=sa.text("reason IS NOT NULL OR mtime_ns >= cached_ns - 2000000000"),
    )
    op.create_index("ix_file_inode", "file", ["inode"], unique=False)
    op.create_index("ix_journal_image_hash", "journal", ["image_hash"], unique=False)
    op.create_index(
        "ix_file_damaged_image_id",
        "file",
        ["damaged_image_id"],
        unique=False,
        sqlite_where=sa.text("damaged_image_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_file_damaged_image_id", table_name="file")
    op.drop_index("ix_journal_image_hash", table_name="journal")
    op.drop_index("ix_file_inode", table_name="file")
    op.drop_index("ix_file_unsettled", table_name="file")
    op.drop_index("ix_file_path_stat_sig", table_name="file")
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS label_dirty_{event}")
    op.drop_table("label_dirty")
    op.drop_table("label_watch")
