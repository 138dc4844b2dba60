"""the quiet mark: a write epoch and, per task, where its last clean sync ended

Revision ID: 0008_quiet_mark
Revises: 0007_file_image_index
Create Date: 2026-12-08

A sync that ended fully clean records a quiet mark (`quiet_mark`): the feed cursor it
ended at, the task's remote labels, and the catalog's write epoch (`write_epoch`, one
row). The epoch moves with every write transaction that changes a row, and triggers on
the small tables move it whatever wrote them (docs/sync.md, "The quiet shortcut"). New
tables: the first sync after the upgrade takes the full path.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008_quiet_mark"
down_revision: str | None = "0007_file_image_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Small tables, written row by row by commands as well as by scans and syncs: a trigger
# per row costs nothing there. (The bulk tables, written a million rows at a time by a
# first scan, are covered by the epoch the catalog's transactions move: catalog/db.py.)
TRIGGERED = ("task", "label", "task_label", "conflict", "scan_problem", "aux_file", "repo_meta")


def upgrade() -> None:
    op.create_table(
        "write_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO write_epoch (id, n) VALUES (1, 0)")
    op.create_table(
        "quiet_mark",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("cursor", sa.String(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("remote_labels", sa.String(), nullable=False),
        sa.Column("options", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id"),
    )
    for table in TRIGGERED:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER quiet_{table}_{event.lower()} AFTER {event} ON {table} "
                "BEGIN UPDATE write_epoch SET n = n + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    for table in TRIGGERED:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS quiet_{table}_{event}")
    op.drop_table("quiet_mark")
    op.drop_table("write_epoch")
