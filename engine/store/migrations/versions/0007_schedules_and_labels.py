"""Scheduled tasks with their firing history; selection labels on tree versions and triggers.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import JSON, add_column, create_index

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = "status IN ('New', 'Work In Progress')"


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_group", sa.String(), nullable=False),
        sa.Column("tree_name", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("results", sa.String()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("when", JSON, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("coalesce", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String()),
        sa.Column("creation_key", sa.String()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sqlite_autoincrement=True,
    )
    create_index(
        "ux_schedules_creation_key",
        "schedules",
        ["creation_key"],
        where="creation_key IS NOT NULL",
        unique=True,
    )
    op.create_table(
        "schedule_firings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("fire_time", sa.Float(), nullable=False),
        sa.Column("first_fire_time", sa.Float(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("trigger_id", sa.Integer()),
        sa.Column("run_id", sa.Integer()),
        sa.Column("engine", sa.String()),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("schedule_id", "fire_time"),
    )
    op.create_index("ix_schedule_firings_schedule_id", "schedule_firings", ["schedule_id"])
    for table in ("tree_versions", "triggers"):
        add_column(table, sa.Column("selection", sa.String(), nullable=False, server_default=""))
    create_index("ix_triggers_open_selection", "triggers", ["selection", "id"], where=_OPEN)


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
