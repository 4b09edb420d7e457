"""Routines: a run may be called by another run's task; tree versions may provide a routine.

A database made in the short while before ``runs.call_depth`` had a server default keeps none on
SQLite (adding one would rebuild ``runs``); the engine always writes the column.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import (
    add_column,
    add_reference,
    create_index,
    has_column,
    is_sqlite,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_reference("runs", "parent_run_id", "INTEGER", "runs")
    add_column("runs", sa.Column("parent_task_id", sa.String(32)))
    if has_column("runs", "call_depth"):
        if not is_sqlite():
            op.alter_column("runs", "call_depth", server_default="0")
    else:
        add_column(
            "runs", sa.Column("call_depth", sa.Integer(), nullable=False, server_default="0")
        )
    create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    add_column("tree_versions", sa.Column("routine_id", sa.String()))
    create_index("ix_tree_versions_routine_id", "tree_versions", ["routine_id"])


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
