"""Users, their bearer tokens, and who created which run.

Plain reads and writes; the rules (hashing, expiry, stamps, roles) live in ``engine.auth``. A
token is stored only as the SHA-256 of its value, so reading this table gives nobody a usable
token. Checking a token is one indexed read that joins its user, because it happens on every
authenticated request. Recording a run's creator is part of every createStart over HTTP, so it
goes through a precompiled driver-level insert like the run's own row.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import SignInAttempts, StoredAccessKey, StoredToken, StoredUser
from engine.rows import RowValues
from engine.store import access_keys as keys
from engine.store import sign_in_failures as attempts
from engine.store.bulk import insert_all
from engine.store.database import Database
from engine.store.tables import access_tokens, run_creators, runs, users

_INSERT_RUN_CREATOR = insert_all(run_creators)


def user_record(row: RowValues) -> StoredUser:
    """A ``users`` row (or a row joining its columns) as a record."""
    return StoredUser(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        security_stamp=row["security_stamp"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def insert_user(connection: Connection, values: Mapping[str, Any]) -> None:
    """Insert a user; a name (key) taken already raises SQLAlchemy's ``IntegrityError``."""
    connection.execute(users.insert().values(**values))


def user_by_key(connection: Connection, name_key: str) -> StoredUser | None:
    """The user whose case-folded name is ``name_key``."""
    statement = sa.select(users).where(users.c.name_key == name_key)
    row = connection.execute(statement).mappings().first()
    return None if row is None else user_record(row)


def list_users(connection: Connection) -> list[StoredUser]:
    rows = connection.execute(sa.select(users).order_by(users.c.name)).mappings()
    return [user_record(row) for row in rows]


def count_users(connection: Connection) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())


def update_user(connection: Connection, name_key: str, values: Mapping[str, Any]) -> bool:
    """Change the named user's columns; False when no user has that name."""
    statement = users.update().where(users.c.name_key == name_key).values(**values)
    return connection.execute(statement).rowcount == 1


def delete_user(connection: Connection, user_id: str) -> None:
    """Delete a user, its tokens and its access keys. The runs it created keep its id."""
    keys.delete_user_keys(connection, user_id)
    connection.execute(access_tokens.delete().where(access_tokens.c.user_id == user_id))
    connection.execute(users.delete().where(users.c.id == user_id))


def insert_token(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(access_tokens.insert().values(**values))


def delete_expired_tokens(connection: Connection, *, user_id: str, now: float) -> int:
    """Forget a user's expired tokens (called when it signs in, so the table stays bounded)."""
    result = connection.execute(
        access_tokens.delete().where(
            access_tokens.c.user_id == user_id, access_tokens.c.expires_at <= now
        )
    )
    return result.rowcount


_TOKEN = (
    sa.select(
        users,
        access_tokens.c.security_stamp.label("token_stamp"),
        access_tokens.c.issued_at,
        access_tokens.c.expires_at,
    )
    .join(users, users.c.id == access_tokens.c.user_id)
    .where(access_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def token_by_hash(connection: Connection, token_hash: str) -> StoredToken | None:
    row = connection.execute(_TOKEN, {"token_hash": token_hash}).mappings().first()
    if row is None:
        return None
    return StoredToken(
        user=user_record(row),
        security_stamp=row["token_stamp"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
    )


def insert_run_creator(connection: Connection, *, run_id: int, user_id: str) -> None:
    # Built with .values() per call, this insert cost more than the run's and trigger's together.
    _INSERT_RUN_CREATOR.execute(connection, [{"run_id": run_id, "user_id": user_id}])


def insert_run_creators(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record who created each of many runs (rows of ``run_id`` and ``user_id``), in one call."""
    _INSERT_RUN_CREATOR.execute(connection, rows)


def run_creator(connection: Connection, run_id: int) -> str | None:
    """The id of the user who created the run through the API, if one did; for a routine's
    run, the creator of the top-level run of its call tree (which started it)."""
    top = (
        sa.select(sa.func.coalesce(runs.c.root_run_id, runs.c.id))
        .where(runs.c.id == run_id)
        .scalar_subquery()
    )
    return connection.execute(
        sa.select(run_creators.c.user_id).where(run_creators.c.run_id == top)
    ).scalar_one_or_none()


class UserBook:
    """The users and tokens of one engine's database, each call one transaction.

    What ``engine.auth`` reads and writes, given to it by the facade as ``Engine.users``: the
    rules (hashing, expiry, stamps, roles, throttling) are the auth package's, the transactions
    are here, so nothing above the facade opens the database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, values: Mapping[str, Any]) -> StoredUser | None:
        """Insert a user; None when its name key is taken (also by a concurrent insert)."""
        try:
            with self.database.write() as connection:
                if user_by_key(connection, values["name_key"]) is not None:
                    return None
                insert_user(connection, values)
                return user_by_key(connection, values["name_key"])
        except sa.exc.IntegrityError:
            return None

    def by_key(self, name_key: str) -> StoredUser | None:
        with self.database.read() as connection:
            return user_by_key(connection, name_key)

    def list(self) -> list[StoredUser]:
        with self.database.read() as connection:
            return list_users(connection)

    def count(self) -> int:
        with self.database.read() as connection:
            return count_users(connection)

    def update(self, name_key: str, values: Mapping[str, Any]) -> StoredUser | None:
        """Change the named user's columns; the user as written, or None if there is none."""
        with self.database.write() as connection:
            if not update_user(connection, name_key, values):
                return None
            return user_by_key(connection, name_key)

    def remove(self, name_key: str, *, attempts_key: str) -> StoredUser | None:
        """Delete the named user, its tokens and its sign-in attempts; the user it was."""
        with self.database.write() as connection:
            stored = user_by_key(connection, name_key)
            if stored is not None:
                delete_user(connection, stored.id)
                attempts.clear(connection, attempts_key)
            return stored

    def issue(
        self, token: Mapping[str, Any], *, now: float, new_password_hash: str | None = None
    ) -> None:
        """Store an issued token (forgetting its user's expired ones), and a rehashed password."""
        with self.database.write() as connection:
            delete_expired_tokens(connection, user_id=token["user_id"], now=now)
            insert_token(connection, token)
            if new_password_hash is not None:
                connection.execute(
                    users.update()
                    .where(users.c.id == token["user_id"])
                    .values(password_hash=new_password_hash)
                )

    def token(self, token_hash: str) -> StoredToken | None:
        with self.database.read() as connection:
            return token_by_hash(connection, token_hash)

    def revoke(self, token_hash: str) -> bool:
        """Delete one token (signing out of the console); whether it existed."""
        with self.database.write() as connection:
            deleted = connection.execute(
                access_tokens.delete().where(access_tokens.c.token_hash == token_hash)
            )
            return bool(deleted.rowcount)

    # -- access keys (engine.store.access_keys) ---------------------------------------------

    def add_key(self, values: Mapping[str, Any]) -> StoredAccessKey:
        with self.database.write() as connection:
            keys.insert_key(connection, values)
            found = keys.key_by_id(connection, values["id"])
        if found is None:  # pragma: no cover - inserted in this very transaction
            raise LookupError(values["id"])
        return found

    def key(self, key_id: str) -> StoredAccessKey | None:
        with self.database.read() as connection:
            return keys.key_by_id(connection, key_id)

    def keys(self, *, user_id: str | None = None) -> builtins.list[StoredAccessKey]:
        with self.database.read() as connection:
            return keys.list_keys(connection, user_id=user_id)

    def remove_key(self, key_id: str) -> StoredAccessKey | None:
        """Delete the key; what it was, or None when there is no such key."""
        with self.database.write() as connection:
            found = keys.key_by_id(connection, key_id)
            if found is not None:
                keys.delete_key(connection, key_id)
            return found

    # -- sign-in attempts (engine.store.sign_in_failures) ------------------------------------

    def reserve_attempt(
        self,
        limits: Mapping[str, int],
        *,
        now: float,
        failures_since: float,
        pending_since: float,
    ) -> SignInAttempts | None:
        """Count an attempt against every key of ``limits``, or against none: the attempts of
        the first key at its limit (see :func:`engine.store.sign_in_failures.reserve`)."""
        with self.database.write() as connection:
            return attempts.reserve(
                connection,
                limits,
                now=now,
                failures_since=failures_since,
                pending_since=pending_since,
            )

    def settle_attempt(
        self,
        *,
        at: float,
        failed: Sequence[str] = (),
        released: Sequence[str] = (),
        cleared: Sequence[str] = (),
    ) -> None:
        """Settle the attempt reserved at ``at``: a failure for the keys ``failed``, forgotten
        for ``released``, and every attempt of the keys ``cleared`` forgotten."""
        outcomes = {key: attempts.Outcome.FAILED for key in failed}
        outcomes |= {key: attempts.Outcome.RELEASED for key in released}
        outcomes |= {key: attempts.Outcome.CLEARED for key in cleared}
        with self.database.write() as connection:
            attempts.settle(connection, outcomes, at=at)

    def attempts(self, key: str) -> SignInAttempts | None:
        with self.database.read() as connection:
            return attempts.attempts(connection, key)

    def clear_attempts(self, key: str) -> SignInAttempts | None:
        """Forget every attempt of ``key`` (unlocking it); what there was, or None."""
        with self.database.write() as connection:
            return attempts.clear(connection, key)


__all__ = [
    "UserBook",
    "count_users",
    "delete_expired_tokens",
    "delete_user",
    "insert_run_creator",
    "insert_run_creators",
    "insert_token",
    "insert_user",
    "list_users",
    "run_creator",
    "token_by_hash",
    "update_user",
    "user_by_key",
    "user_record",
]
