"""What a keyed request was: the fingerprint stored beside the trigger its key made.

Triggers keyed before this revision have no fingerprint: a repeat of one is refused as not
known to be the same request (``engine.store.request_keys``), never answered as if it were.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_keys",
        sa.Column("idempotency_key", sa.String(), primary_key=True),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("trigger_id", sa.Integer(), sa.ForeignKey("triggers.id"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_request_keys_trigger_id", "request_keys", ["trigger_id"])


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
