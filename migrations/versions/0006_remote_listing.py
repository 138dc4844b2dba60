"""the task's remote listing and its change-feed cursor

Revision ID: 0006_remote_listing
Revises: 0005_damaged_files
Create Date: 2026-12-07

A sync against a server with a change feed (docs/sync.md, "How a sync learns the
remote's changes") keeps each task's last listing (`remote_listing`) and its cursor
(`remote_feed`), and asks only for what changed since. New tables, empty: the first
sync after the upgrade lists in full.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006_remote_listing'
down_revision: str | None = '0005_damaged_files'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'remote_listing',
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.String(), nullable=False),
        sa.Column('doc', sa.String(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('task_id', 'image_id'),
        sqlite_with_rowid=False,
    )
    op.create_table(
        'remote_feed',
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(), nullable=False),
        sa.Column('cursor', sa.String(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('task_id'),
    )


def downgrade() -> None:
    op.drop_table('remote_feed')
    op.drop_table('remote_listing')
