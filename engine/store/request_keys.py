"""What a keyed request was: its fingerprint, stored beside the trigger its idempotency key made.

A trigger's ``idempotency_key`` (unique) is what makes a repeated call return the first call's
trigger; this table says what the first call *was*, so that the same key sent with a different
request is refused instead of being answered as if it were the first. A row is written in the
transaction that writes its trigger, so a key never exists without its fingerprint, and is kept
as long as the trigger is. The fingerprint is opaque here (the HTTP layer hashes the method,
path, body and caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from engine.errors import IdempotencyKeyReused


class RequestKeyRow(SQLModel, table=True):
    __tablename__ = "request_keys"

    idempotency_key: str = Field(primary_key=True)  # the trigger's
    fingerprint: str = Field(max_length=128)
    trigger_id: int = Field(foreign_key="triggers.id", index=True)
    created_at: float


request_keys = SQLModel.metadata.tables["request_keys"]
_FINGERPRINT = sa.select(request_keys.c.fingerprint).where(
    request_keys.c.idempotency_key == sa.bindparam("key")
)


def record_all(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store many keys' fingerprints (rows of the table's columns), in one statement."""
    if rows:
        connection.execute(request_keys.insert(), list(rows))


def check(connection: Connection, *, key: str, fingerprint: str) -> None:
    """Refuse a request sent with ``key`` unless it is the one that first used it.

    A key whose trigger was written without a fingerprint (by a call that gave none) is not
    known to be the same request, so it is refused too.
    """
    stored = connection.execute(_FINGERPRINT, {"key": key}).scalar_one_or_none()
    if stored != fingerprint:
        raise IdempotencyKeyReused(key=key)


__all__ = ["RequestKeyRow", "check", "record_all", "request_keys"]
