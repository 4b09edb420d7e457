"""Retries, cancel, run again and manual triggers; Kinetic-style access keys.

Tasks count the attempts of their handler and keep the last failure (a node's retry policy),
runs name the run they were run again from, triggers say who asked for a manual one and at
which node; ``access_keys`` holds the keys usable as HTTP Basic credentials. Existing tasks
are on their first attempt (the server default); every other new column is empty.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import add_reference, has_column, has_table

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _add(table: str, column: sa.Column[object]) -> None:
    if not has_column(table, column.name):
        op.add_column(table, column)


def upgrade() -> None:
    if not has_table("access_keys"):
        op.create_table(
            "access_keys",
            sa.Column("id", sa.String(length=64), primary_key=True),
            sa.Column("user_id", sa.String(length=36), sa.ForeignKey("users.id"), nullable=False),
            sa.Column("secret_hash", sa.String(length=64), nullable=False),
            sa.Column("description", sa.String(length=255), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
        )
        op.create_index("ix_access_keys_user_id", "access_keys", ["user_id"])
    add_reference("runs", "again_of", "INTEGER", "runs")
    _add("tasks", sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
    _add("tasks", sa.Column("last_error", sa.String(), nullable=True))
    _add("triggers", sa.Column("requested_by", sa.String(), nullable=True))
    _add("triggers", sa.Column("node", sa.String(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
