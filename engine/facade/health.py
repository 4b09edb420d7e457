"""The Engine's view of its queue and processes, for an operator: the backlog (open and due
triggers), the claims and leases workers hold, which engine processes closed the latest
triggers, the latest errors, and which process runs the scheduler.

``/metrics`` counts the backlog with the same predicate and index (``count_open_triggers``);
this adds what a person needs beside the number: due or not, by selection label, the oldest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.records import RunError
from engine.schedule.leader import LockHolder, lock_holder
from engine.schedule.schedules import Schedules
from engine.store import health, resolutions
from engine.store.database import Database
from engine.store.health import BacklogPart, Claim, Closer

RECENT_ERRORS = 10


@dataclass(frozen=True)
class SchedulerLeader:
    """Who runs the scheduler. On PostgreSQL, the session holding its lock (``holder``; None:
    no process runs one now); on SQLite, the process that started its engine (``exclusive``
    False). ``here`` is whether this process runs it; ``last_firing`` the process that
    recorded the latest firing and when."""

    exclusive: bool
    here: bool
    holder: LockHolder | None
    last_firing: tuple[str, float] | None


@dataclass(frozen=True)
class Health:
    now: float
    backlog: tuple[BacklogPart, ...]
    claims: tuple[Claim, ...]
    leased_runs: int
    closers: tuple[Closer, ...]
    closers_of: int  # how many of the latest triggers ``closers`` counts
    recent_errors: tuple[RunError, ...]
    active_errors: int
    leader: SchedulerLeader

    @property
    def open_triggers(self) -> int:
        return sum(part.open for part in self.backlog)

    @property
    def due_triggers(self) -> int:
        return sum(part.due for part in self.backlog)

    @property
    def oldest_due_at(self) -> float | None:
        times = [part.oldest_due_at for part in self.backlog if part.oldest_due_at is not None]
        return min(times, default=None)


class HealthReads:
    """The queue's health (part of :class:`~engine.engine.Engine`)."""

    database: Database
    schedules: Schedules
    clock: Callable[[], float]

    def health(self, *, recent_errors: int = RECENT_ERRORS) -> Health:
        """Everything in one read transaction, every query bounded by an index
        (``engine.store.health``); ``recent_errors`` is how many of the newest errors to list."""
        now = self.clock()
        with self.database.read() as connection:
            backlog = health.backlog(connection, now=now)
            claims = health.claims(connection, now=now)
            leased = health.leased_runs(connection)
            closers = health.recent_closers(connection)
            errors = resolutions.list_errors(connection, limit=recent_errors)
            active = resolutions.count_errors(connection, status="Active")
            holder = lock_holder(connection)
            last_firing = health.last_firing_engine(connection)
        leader = SchedulerLeader(
            exclusive=self.database.is_postgresql,
            here=self.schedules.scheduler.leading,
            holder=holder,
            last_firing=last_firing,
        )
        return Health(
            now=now,
            backlog=tuple(backlog),
            claims=tuple(claims),
            leased_runs=leased,
            closers=tuple(closers),
            closers_of=health.RECENT_TRIGGERS,
            recent_errors=tuple(errors),
            active_errors=active,
            leader=leader,
        )


__all__ = ["RECENT_ERRORS", "Health", "HealthReads", "SchedulerLeader"]
