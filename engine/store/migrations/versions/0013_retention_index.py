"""An index of routine runs by their call tree's top-level run, for purging whole call trees.

Partial: top-level runs (most runs) have no ``root_run_id`` and stay out of it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from engine.store.migrations.steps import create_index

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index("ix_runs_root_run_id", "runs", ["root_run_id"], where="root_run_id IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
