"""Runs' references to other runs, indexed partially: only the runs that have one are in it.

``parent_run_id``: most runs are top-level (no parent), and each of them put an entry in the
index that no query reads (every lookup asks for a given parent), a B-tree page written by every
createStart. Equality on the column implies it is not null, so the lookups, and the foreign key
checks when runs are purged, use the partial index as they used the full one.

``again_of`` (Run Again) had no index at all, so deleting a run made SQLite scan every run for
one run again from it (its foreign key check): purging k runs cost k times the table.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

from engine.store.migrations.steps import create_index, has_index

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if has_index("runs", "ix_runs_parent_run_id"):
        op.drop_index("ix_runs_parent_run_id", table_name="runs")
    create_index(
        "ix_runs_parent_run_id", "runs", ["parent_run_id"], where="parent_run_id IS NOT NULL"
    )
    create_index("ix_runs_again_of", "runs", ["again_of"], where="again_of IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
