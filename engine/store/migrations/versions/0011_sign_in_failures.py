"""Sign-in attempts as rows; users found by a case-folded name key.

``users.name_key`` is filled from each name (its NFKC case fold, as ``engine.auth.names`` keys
names at this revision: a revision is frozen, so the rule is written out here). Two users whose
names fold to one key cannot both keep it: the upgrade stops, names them, and changes nothing.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from engine.errors import SchemaUpgradeFailed
from engine.store.migrations.steps import JSON, SQLITE_NAMES, has_column, has_table, is_sqlite

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_users = sa.table("users", sa.column("id", sa.String()), sa.column("name", sa.String()))


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def _fill_name_keys() -> None:
    bind = op.get_bind()
    keys: dict[str, list[str]] = defaultdict(list)
    rows = bind.execute(sa.select(_users.c.id, _users.c.name)).all()
    for _id, name in rows:
        keys[_name_key(name)].append(name)
    clashes = [names for names in keys.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(", ".join(repr(name) for name in names) for names in clashes)
        raise SchemaUpgradeFailed(
            revision=revision,
            reason=f"user names that differ only in case must be made distinct first: {listed}",
        )
    name_key = sa.column("name_key", sa.String())
    update = sa.update(_users).where(_users.c.id == sa.bindparam("user_id"))
    for user_id, name in rows:
        bind.execute(update.values({name_key: _name_key(name)}), {"user_id": user_id})


def upgrade() -> None:
    if not has_table("sign_in_failures"):
        op.create_table(
            "sign_in_failures",
            sa.Column("key", sa.String(), primary_key=True),
            sa.Column("failures", JSON, nullable=False),
            sa.Column("pending", JSON, nullable=False),
            sa.Column("last_at", sa.Float(), nullable=False),
        )
        op.create_index("ix_sign_in_failures_last_at", "sign_in_failures", ["last_at"])
    if has_column("users", "name_key"):
        return
    op.add_column("users", sa.Column("name_key", sa.String(), nullable=True))
    _fill_name_keys()
    if is_sqlite():  # NOT NULL and UNIQUE need a rebuild (foreign keys are off meanwhile)
        with op.batch_alter_table("users", recreate="always", naming_convention=SQLITE_NAMES) as b:
            b.alter_column("name_key", existing_type=sa.String(), nullable=False)
            b.create_unique_constraint("uq_users_name_key", ["name_key"])
    else:
        op.alter_column("users", "name_key", existing_type=sa.String(), nullable=False)
        op.create_unique_constraint("users_name_key_key", "users", ["name_key"])


def downgrade() -> None:
    raise NotImplementedError("treeflow migrates forward only: restore a backup to go back")
