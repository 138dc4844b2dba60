"""file rows indexed by their image

Revision ID: 0007_file_image_index
Revises: 0006_remote_listing
Create Date: 2026-12-07

A change of a few files in a large tree must cost what a few files cost (issue 22,
item 5; docs/benchmarks.md): the scan re-derives the labels of the images those files
hold, and `repo status` names the files of the images whose labels changed. Both look
files up by image, which without this index reads the whole file table.
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0007_file_image_index'
down_revision: str | None = '0006_remote_listing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_file_image_id', 'file', ['image_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_file_image_id', table_name='file')
