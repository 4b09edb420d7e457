"""What the queue looks like now: the backlog, the claims and their leases, and which
processes closed the latest triggers. Read-only (who holds the scheduler's lock is
:func:`engine.schedule.leader.lock_holder`).

Every query is bounded by an index: open triggers through the partial index on open triggers
(its own predicate as SQL literals, as :mod:`engine.store.inspection` counts the backlog),
leased runs through the partial index on leased runs, the latest closers through the primary
key (the newest ``RECENT_TRIGGERS`` triggers, not a time window over an unindexed column).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.inspection import OPEN
from engine.store.queue import WIP
from engine.store.schedules import schedule_firings
from engine.store.tables import runs, triggers

RECENT_TRIGGERS = 1000  # the latest triggers whose closers are reported
_WIP: sa.ColumnElement[str] = sa.literal_column(f"'{WIP}'")


@dataclass(frozen=True)
class BacklogPart:
    """Open triggers of one selection label and status: how many, how many are due, and the
    oldest due time among those due (None when none is)."""

    selection: str
    status: str
    open: int
    due: int
    oldest_due_at: float | None


@dataclass(frozen=True)
class Claim:
    """One claim's lease: the triggers it holds Work In Progress and until when."""

    claim_id: str
    triggers: int
    runs: int
    lease_until: float
    expired: bool


@dataclass(frozen=True)
class Closer:
    """An engine process (``host:pid``) and what it closed of the latest triggers."""

    engine: str
    closed: int
    failed: int
    last_closed_at: float


def backlog(connection: Connection, *, now: float) -> list[BacklogPart]:
    """Open triggers by selection label and status, with how many are due at ``now``."""
    due = triggers.c.due_at <= now
    statement = (
        sa.select(
            triggers.c.selection,
            triggers.c.status,
            sa.func.count(),
            sa.func.count().filter(due),
            sa.func.min(sa.case((due, triggers.c.due_at))),
        )
        .where(OPEN)
        .group_by(triggers.c.selection, triggers.c.status)
        .order_by(triggers.c.selection, triggers.c.status)
    )
    return [
        BacklogPart(
            selection=selection,
            status=status,
            open=int(count),
            due=int(due_count),
            oldest_due_at=None if oldest is None else float(oldest),
        )
        for selection, status, count, due_count, oldest in connection.execute(statement)
    ]


def claims(connection: Connection, *, now: float) -> list[Claim]:
    """The claims holding triggers Work In Progress, with the runs each has leased."""
    held = (
        sa.select(triggers.c.lease_owner, sa.func.count(), sa.func.max(triggers.c.lease_until))
        .where(OPEN, triggers.c.status == _WIP, triggers.c.lease_owner.is_not(None))
        .group_by(triggers.c.lease_owner)
    )
    found = {
        owner: (int(count), float(until or 0)) for owner, count, until in connection.execute(held)
    }
    if not found:
        return []
    leased = (
        sa.select(runs.c.lease_owner, sa.func.count())
        .where(runs.c.lease_owner.in_(list(found)))
        .group_by(runs.c.lease_owner)
    )
    run_counts = {owner: int(count) for owner, count in connection.execute(leased)}
    return [
        Claim(
            claim_id=owner,
            triggers=count,
            runs=run_counts.get(owner, 0),
            lease_until=until,
            expired=until < now,
        )
        for owner, (count, until) in sorted(found.items(), key=lambda item: item[1][1])
    ]


def leased_runs(connection: Connection) -> int:
    """Runs under a lease now (through the partial index on leased runs)."""
    statement = sa.select(sa.func.count()).select_from(runs).where(runs.c.lease_owner.is_not(None))
    return int(connection.execute(statement).scalar_one())


def recent_closers(connection: Connection, *, latest: int = RECENT_TRIGGERS) -> list[Closer]:
    """Which processes closed the ``latest`` triggers (newest ids), most recently active first."""
    newest = (
        sa.select(triggers.c.engine, triggers.c.status, triggers.c.closed_at)
        .order_by(triggers.c.id.desc())
        .limit(latest)
        .subquery()
    )
    statement = (
        sa.select(
            newest.c.engine,
            sa.func.count(),
            sa.func.count().filter(newest.c.status == "Failed"),
            sa.func.max(newest.c.closed_at),
        )
        .where(newest.c.engine.is_not(None), newest.c.closed_at.is_not(None))
        .group_by(newest.c.engine)
        .order_by(sa.func.max(newest.c.closed_at).desc())
    )
    return [
        Closer(engine=engine, closed=int(closed), failed=int(failed), last_closed_at=float(last))
        for engine, closed, failed, last in connection.execute(statement)
    ]


def last_firing_engine(connection: Connection) -> tuple[str, float] | None:
    """The process that recorded the latest schedule firing, and when (the scheduler's leader
    then): the one clue to the leader a database without advisory locks keeps."""
    row = connection.execute(
        sa.select(schedule_firings.c.engine, schedule_firings.c.recorded_at)
        .where(schedule_firings.c.engine.is_not(None))
        .order_by(schedule_firings.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (str(row[0]), float(row[1]))


__all__ = [
    "RECENT_TRIGGERS",
    "BacklogPart",
    "Claim",
    "Closer",
    "backlog",
    "claims",
    "last_firing_engine",
    "leased_runs",
    "recent_closers",
]
