"""Access keys: a user's Kinetic-style id and secret pairs, read by id on every Basic call.

Plain reads and writes; the rules (generating, hashing, checking) live in
``engine.auth.access_keys``. Finding a key is one indexed read joined with its user, as for a
bearer token, because it happens on every request that sends the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import StoredAccessKey
from engine.rows import RowValues
from engine.store.tables import access_keys, users

_KEYS = sa.select(
    users,
    access_keys.c.id.label("key_id"),
    access_keys.c.secret_hash,
    access_keys.c.description,
    access_keys.c.created_at.label("key_created_at"),
).join(users, users.c.id == access_keys.c.user_id)


def _key(row: RowValues) -> StoredAccessKey:
    from engine.store.users import user_record  # users.py imports this module first

    return StoredAccessKey(
        id=row["key_id"],
        user=user_record(row),
        secret_hash=row["secret_hash"],
        description=row["description"],
        created_at=row["key_created_at"],
    )


def insert_key(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(access_keys.insert().values(**values))


def key_by_id(connection: Connection, key_id: str) -> StoredAccessKey | None:
    row = connection.execute(_KEYS.where(access_keys.c.id == key_id)).mappings().first()
    return None if row is None else _key(row)


def list_keys(connection: Connection, *, user_id: str | None = None) -> list[StoredAccessKey]:
    """Every key (of one user, when given), by user name and then creation."""
    statement = _KEYS.order_by(users.c.name, access_keys.c.created_at, access_keys.c.id)
    if user_id is not None:
        statement = statement.where(access_keys.c.user_id == user_id)
    return [_key(row) for row in connection.execute(statement).mappings()]


def delete_key(connection: Connection, key_id: str) -> bool:
    return connection.execute(access_keys.delete().where(access_keys.c.id == key_id)).rowcount == 1


def delete_user_keys(connection: Connection, user_id: str) -> None:
    connection.execute(access_keys.delete().where(access_keys.c.user_id == user_id))


__all__ = ["delete_key", "delete_user_keys", "insert_key", "key_by_id", "list_keys"]
