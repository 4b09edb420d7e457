"""The first released schema: tree versions, runs, tasks, triggers and errors.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import JSON

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

_OPEN = "status IN ('New', 'Work In Progress')"


def upgrade() -> None:
    op.create_table(
        "tree_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_group", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("source_name", "source_group", "name", "version"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tree_version_id", sa.Integer(), sa.ForeignKey("tree_versions.id"), nullable=False
        ),
        sa.Column("source_name", sa.String(), nullable=False),
        sa.Column("source_group", sa.String(), nullable=False),
        sa.Column("tree_name", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("values", JSON, nullable=False),
        sa.Column("source_data", JSON, nullable=False),
        sa.Column("lease_owner", sa.String()),
        sa.Column("lease_until", sa.Float()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_tree", "runs", ["source_name", "source_group", "tree_name"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("handler_id", sa.String(), nullable=False),
        sa.Column("loop_index", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("results", JSON, nullable=False),
        sa.Column("token", sa.String(40), unique=True),
        sa.Column("arrived", JSON, nullable=False),
        sa.Column("completing", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_tasks_run_id", "tasks", ["run_id"])
    op.create_table(
        "triggers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("task_id", sa.String(32)),
        sa.Column("token", sa.String()),
        sa.Column("results", sa.String()),
        sa.Column("message", sa.String()),
        sa.Column("idempotency_key", sa.String(), unique=True),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String()),
        sa.Column("lease_until", sa.Float()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String()),
        sa.Column("error", sa.String()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("closed_at", sa.Float()),
    )
    op.create_index(
        "ix_triggers_open",
        "triggers",
        ["id"],
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index("ix_triggers_run_id", "triggers", ["run_id"])
    op.create_table(
        "errors",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("task_id", sa.String(32)),
        sa.Column("trigger_id", sa.Integer()),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("loop_index", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("connector_to", sa.String()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_errors_run_id", "errors", ["run_id"])


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
