"""damaged files keep their image

Revision ID: 0005_damaged_files
Revises: 0004_image_label_without_rowid
Create Date: 2026-12-06

A synced file that turns unreadable or undecodable is damaged, not deleted
(docs/sync.md, "Damaged files"): its row keeps the image it held in
`damaged_image_id`, so that every later sync holds that image back until the file
is valid again or gone. Existing rows start with NULL.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_damaged_files'
down_revision: str | None = '0004_image_label_without_rowid'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('damaged_image_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('file', schema=None) as batch_op:
        batch_op.drop_column('damaged_image_id')
