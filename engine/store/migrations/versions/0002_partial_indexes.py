"""Partial indexes: leased runs, real tokens and idempotency keys only; tasks keyed by their id.

The unique constraints on ``tasks.token`` and ``triggers.idempotency_key`` become partial unique
indexes (NULLs are most rows and need no entry); on SQLite ``tasks`` is rebuilt WITHOUT ROWID.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from engine.store.migrations.steps import SQLITE_NAMES, create_index, has_index, is_sqlite

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index("ix_runs_leased", "runs", ["lease_owner"], where="lease_owner IS NOT NULL")
    if not has_index("tasks", "ux_tasks_token"):
        if is_sqlite():
            with op.batch_alter_table(
                "tasks",
                recreate="always",
                naming_convention=SQLITE_NAMES,
                table_kwargs={"sqlite_with_rowid": False},
            ) as batch:
                batch.drop_constraint("uq_tasks_token", type_="unique")
        else:
            op.drop_constraint("tasks_token_key", "tasks", type_="unique")
        create_index("ux_tasks_token", "tasks", ["token"], where="token IS NOT NULL", unique=True)
    if not has_index("triggers", "ux_triggers_idempotency_key"):
        if is_sqlite():
            with op.batch_alter_table(
                "triggers", recreate="always", naming_convention=SQLITE_NAMES
            ) as batch:
                batch.drop_constraint("uq_triggers_idempotency_key", type_="unique")
        else:
            op.drop_constraint("triggers_idempotency_key_key", "triggers", type_="unique")
        create_index(
            "ux_triggers_idempotency_key",
            "triggers",
            ["idempotency_key"],
            where="idempotency_key IS NOT NULL",
            unique=True,
        )


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
