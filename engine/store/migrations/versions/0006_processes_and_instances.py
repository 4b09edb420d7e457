"""Processes (trees published under a name) and their numbered instances.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import JSON

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("name", sa.String(150), primary_key=True),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_group", sa.String(), nullable=False),
        sa.Column("tree_name", sa.String(), nullable=False),
        sa.UniqueConstraint("source_name", "source_group", "tree_name"),
    )
    op.create_table(
        "instances",
        sa.Column("name", sa.String(180), primary_key=True),
        sa.Column("process", sa.String(150), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("process", "number"),
    )
    op.create_table(
        "instance_counters",
        sa.Column("process", sa.String(150), primary_key=True),
        sa.Column("last", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
