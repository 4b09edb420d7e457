"""Schedules that create instances of a process; firings name the instance they created.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.store.migrations.steps import JSON, add_column

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("schedules", sa.Column("process", sa.String(150)))
    add_column("schedules", sa.Column("fields", JSON))
    add_column("schedules", sa.Column("instance", sa.String(180)))
    add_column("schedules", sa.Column("creator_id", sa.String(36)))
    add_column("schedule_firings", sa.Column("instance", sa.String()))


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
