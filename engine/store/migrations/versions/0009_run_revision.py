"""``runs.revision``: bumped by every write a worker's kept run state must not miss.

This is the column whose absence made a database of an earlier release fail at its first
createStart ("table runs has no column named revision").

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.store.migrations.steps import add_column

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("runs", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
