"""Read-only queries for inspection: counting runs, the size of the queue.

``GET /api/runs`` and ``/metrics`` read through these; runs and triggers themselves are read by
:mod:`engine.store.runs`, errors (listed and counted) by :mod:`engine.store.resolutions`.
Nothing here writes.

The backlog is counted with the partial index ``ix_triggers_open``'s own predicate written as
SQL literals, so the planner answers it from that index (which holds only open triggers) and
never from the table, however many closed triggers it has.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import OPEN_TRIGGER_STATUSES, run_creators, runs, triggers

# Open triggers: the partial index's own predicate, which every count of the backlog filters on.
OPEN = triggers.c.status.in_([sa.literal_column(f"'{s}'") for s in OPEN_TRIGGER_STATUSES])
_BACKLOG = sa.select(sa.func.count()).select_from(triggers).where(OPEN)


def run_filters(
    status: str | None = None,
    tree_name: str | None = None,
    source_id: str | None = None,
    *,
    created_by: str | None = None,
    created_from: float | None = None,
    created_until: float | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of a list of runs: each filter given, all of them together.

    ``created_by`` is a user id: the runs that user created through the API, as
    ``run_creators`` records them, and the routine runs their call trees started.
    ``created_from`` and ``created_until`` bound the run's creation time (UNIX seconds, from
    inclusive, until exclusive).
    """
    found = []
    if status is not None:
        found.append(runs.c.status == status)
    if tree_name is not None:
        found.append(runs.c.tree_name == tree_name)
    if source_id is not None:
        found.append(runs.c.source_id == source_id)
    if created_by is not None:  # the user's runs and the routine runs under them
        mine = sa.select(run_creators.c.run_id).where(run_creators.c.user_id == created_by)
        found.append(sa.or_(runs.c.id.in_(mine), runs.c.root_run_id.in_(mine)))
    if created_from is not None:
        found.append(runs.c.created_at >= created_from)
    if created_until is not None:
        found.append(runs.c.created_at < created_until)
    return found


def count_runs(connection: Connection, **filters: Any) -> int:
    """How many runs :func:`engine.store.runs.list_runs` pages through with these filters
    (those of :func:`run_filters`)."""
    statement = sa.select(sa.func.count()).select_from(runs).where(*run_filters(**filters))
    return int(connection.execute(statement).scalar_one())


def count_runs_by_status(connection: Connection, **filters: Any) -> dict[str, int]:
    """Status to the number of runs in it, with these filters; statuses without runs are left
    out. One GROUP BY over the status index."""
    statement = (
        sa.select(runs.c.status, sa.func.count())
        .where(*run_filters(**filters))
        .group_by(runs.c.status)
    )
    return {status: int(count) for status, count in connection.execute(statement)}


def open_trigger_count(connection: Connection) -> int:
    """Triggers New or Work In Progress (due or not): the queue's backlog, from its index."""
    return int(connection.execute(_BACKLOG).scalar_one())


__all__ = ["OPEN", "count_runs", "count_runs_by_status", "open_trigger_count", "run_filters"]
