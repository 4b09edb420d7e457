"""The scheduled retention policy: finished runs purged on their own, by the scheduler's leader.

An engine given a :class:`RetentionPolicy` purges, every ``every`` seconds, the call trees that
``treeflow purge --older-than`` would (``engine.store.retention``), in the process that runs the
scheduler: one process of a PostgreSQL database does it at a time, and processes that do not
run the scheduler never do. A pass stops after ``max_batches`` batches so that the scheduler's
own work is never held up for long; a backlog left over is taken up at the scheduler's next
poll, not a whole ``every`` later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.errors import BadRequest
from engine.store.database import Database
from engine.store.retention import DEFAULT_BATCH, PurgeCriteria, purge

DEFAULT_EVERY = 3600.0
DEFAULT_MAX_BATCHES = 20


@dataclass(frozen=True)
class RetentionPolicy:
    """Purge runs finished more than ``older_than`` seconds ago, in ``statuses`` (default:
    Completed and Cancelled), every ``every`` seconds, ``batch_size`` call trees a batch."""

    older_than: float
    statuses: tuple[str, ...] | None = None
    every: float = DEFAULT_EVERY
    batch_size: int = DEFAULT_BATCH
    max_batches: int = DEFAULT_MAX_BATCHES

    def __post_init__(self) -> None:
        if not self.older_than > 0:
            raise BadRequest(field="retention older_than", reason="must be more than 0 seconds")
        if not self.every > 0:
            raise BadRequest(field="retention every", reason="must be more than 0 seconds")
        PurgeCriteria.checked(before=0.0, statuses=self.statuses, tree_name=None)

    @classmethod
    def keeping(cls, older_than: float, statuses: Iterable[str] | None = None) -> RetentionPolicy:
        return cls(older_than=older_than, statuses=None if statuses is None else tuple(statuses))


class RetentionDuty:
    """What the scheduler's leader calls after each of its polls: a purge pass when one is due."""

    def __init__(
        self,
        database: Database,
        policy: RetentionPolicy,
        *,
        clock: Callable[[], float],
        logger: logging.Logger,
    ) -> None:
        self.database = database
        self.policy = policy
        self.clock = clock
        self.logger = logger
        self.due_at = 0.0  # the first pass runs once this process leads

    def __call__(self) -> None:
        now = self.clock()
        if now < self.due_at:
            return
        policy = self.policy
        criteria = PurgeCriteria.checked(
            before=now - policy.older_than, statuses=policy.statuses, tree_name=None
        )
        counts = purge(
            self.database,
            criteria,
            batch_size=policy.batch_size,
            max_batches=policy.max_batches,
        )
        self.due_at = now if counts.more else now + policy.every
        if counts.runs:
            self.logger.info(
                "retention: purged %d runs (%d call trees), %d tasks, %d triggers, %d errors%s",
                counts.runs,
                counts.call_trees,
                counts.tasks,
                counts.triggers,
                counts.errors,
                "; more left for the next pass" if counts.more else "",
            )


__all__ = ["DEFAULT_EVERY", "RetentionDuty", "RetentionPolicy"]
