"""Error records carry their resolution: the action, its message, who, its trigger, when.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.store.migrations.steps import add_column

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("errors", sa.Column("resolution_action", sa.String()))
    add_column("errors", sa.Column("resolution_message", sa.String()))
    add_column("errors", sa.Column("resolved_by", sa.String()))
    add_column("errors", sa.Column("resolution_trigger_id", sa.Integer()))
    add_column("errors", sa.Column("resolved_at", sa.Float()))


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
