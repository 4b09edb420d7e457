"""Sign-in attempts per throttled key, reserved before a password is checked.

The rules (which keys, their limits, how long a failure counts) are ``engine.auth``'s; this is
the part that must be atomic. :func:`reserve` counts an attempt against every key of a sign-in
in one transaction, or against none when one of them is at its limit, so parallel guesses can
never all pass the check before the first has failed. :func:`settle` then turns the attempt
into a failure, releases it, or clears the key.

On PostgreSQL each key's row is inserted if missing and locked ``FOR UPDATE``, keys in sorted
order, so two reservations wait for each other but never deadlock; on SQLite the write
transaction holds the database's write lock already. Rows whose last attempt has expired are
deleted a few at a time by later reservations (``SKIP LOCKED`` on PostgreSQL: never waiting
for a reservation in progress), so the table holds what the current window counts and little
else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from engine.records import SignInAttempts
from engine.rows import RowValues
from engine.store.tables import sign_in_failures

PRUNE_BATCH = 100  # expired rows deleted per reservation at most: bounded work per sign-in
key_column = sign_in_failures.c.key


class Outcome(Enum):
    """What became of a reserved attempt."""

    FAILED = "failed"  # a failure now, counted until it leaves the window
    RELEASED = "released"  # not a failure (the password was never checked): forgotten
    CLEARED = "cleared"  # a success that forgives the key's failures: the row goes


def _locked(connection: Connection, keys: Sequence[str], *, now: float) -> dict[str, RowValues]:
    ordered = sorted(keys)
    select = sa.select(sign_in_failures).where(key_column.in_(ordered))
    if connection.dialect.name == "postgresql":
        empty = [{"key": key, "failures": [], "pending": [], "last_at": now} for key in ordered]
        connection.execute(postgresql.insert(sign_in_failures).on_conflict_do_nothing(), empty)
        select = select.order_by(key_column).with_for_update()
    return {row["key"]: row for row in connection.execute(select).mappings()}


def _write(connection: Connection, key: str, failures: list[float], pending: list[float]) -> None:
    if not failures and not pending:
        connection.execute(sign_in_failures.delete().where(key_column == key))
        return
    values = {"failures": failures, "pending": pending, "last_at": max(failures + pending)}
    insert = (
        postgresql.insert(sign_in_failures)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(sign_in_failures)
    )
    upsert = insert.values(key=key, **values)
    connection.execute(upsert.on_conflict_do_update(index_elements=[key_column], set_=values))


def _prune(connection: Connection, *, before: float) -> None:
    expired = sa.select(key_column).where(sign_in_failures.c.last_at < before).limit(PRUNE_BATCH)
    if connection.dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    connection.execute(sign_in_failures.delete().where(key_column.in_(expired.scalar_subquery())))


def reserve(
    connection: Connection,
    limits: Mapping[str, int],
    *,
    now: float,
    failures_since: float,
    pending_since: float,
) -> SignInAttempts | None:
    """Count an attempt at ``now`` against each key of ``limits`` (key to limit, checked in
    order), unless a key already has ``limit`` failures after ``failures_since`` and pending
    attempts after ``pending_since`` together: then nothing is counted and that key's recent
    attempts are returned."""
    rows = _locked(connection, list(limits), now=now)
    recent: dict[str, tuple[list[float], list[float]]] = {}
    refused: SignInAttempts | None = None
    for key, limit in limits.items():
        row = rows.get(key)
        failures = [t for t in row["failures"] if t > failures_since] if row else []
        pending = [t for t in row["pending"] if t > pending_since] if row else []
        recent[key] = (failures, pending)
        if refused is None and len(failures) + len(pending) >= limit:
            refused = SignInAttempts(key=key, failures=tuple(failures), pending=tuple(pending))
    if refused is not None:
        empty = [key for key, (failures, pending) in recent.items() if not failures + pending]
        connection.execute(sign_in_failures.delete().where(key_column.in_(empty)))
        return refused
    for key, (failures, pending) in recent.items():
        _write(connection, key, failures, [*pending, now])
    _prune(connection, before=min(failures_since, pending_since))
    return None


def settle(connection: Connection, outcomes: Mapping[str, Outcome], *, at: float) -> None:
    """Settle the attempt reserved at ``at`` for each key as its outcome says."""
    rows = _locked(connection, list(outcomes), now=at)
    for key, outcome in outcomes.items():
        row = rows.get(key)
        if row is None or outcome is Outcome.CLEARED:
            connection.execute(sign_in_failures.delete().where(key_column == key))
            continue
        failures, pending = list(row["failures"]), list(row["pending"])
        if at in pending:
            pending.remove(at)
            if outcome is Outcome.FAILED:
                failures.append(at)
        _write(connection, key, failures, pending)


def attempts(connection: Connection, key: str) -> SignInAttempts | None:
    statement = sa.select(sign_in_failures).where(key_column == key)
    row = connection.execute(statement).mappings().first()
    if row is None:
        return None
    return SignInAttempts(key=key, failures=tuple(row["failures"]), pending=tuple(row["pending"]))


def clear(connection: Connection, key: str) -> SignInAttempts | None:
    """Forget every attempt of ``key``; what there was, or None."""
    found = attempts(connection, key)
    connection.execute(sign_in_failures.delete().where(key_column == key))
    return found


__all__ = ["PRUNE_BATCH", "Outcome", "attempts", "clear", "reserve", "settle"]
