"""Routine runs know their call tree's top-level run, and each call tree counts its runs.

Existing routine runs get their ``root_run_id`` by walking their callers up, and every call
tree with routine runs gets its ``call_trees`` row with their number, as the engine would have
counted them (``engine.store.call_trees``).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.migrations.steps import add_reference

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ROOTS = """
WITH RECURSIVE chain(id, root) AS (
    SELECT id, id FROM runs WHERE parent_run_id IS NULL
    UNION ALL
    SELECT runs.id, chain.root FROM runs JOIN chain ON runs.parent_run_id = chain.id
)
UPDATE runs SET root_run_id = (SELECT chain.root FROM chain WHERE chain.id = runs.id)
WHERE parent_run_id IS NOT NULL
"""
_COUNTS = """
INSERT INTO call_trees (root_run_id, runs)
SELECT root_run_id, COUNT(*) FROM runs WHERE root_run_id IS NOT NULL GROUP BY root_run_id
"""


def upgrade() -> None:
    op.create_table(
        "call_trees",
        sa.Column("root_run_id", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
    )
    add_reference("runs", "root_run_id", "INTEGER", "runs")
    op.execute(_ROOTS)
    op.execute(_COUNTS)


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
