"""Read-only queries for inspection: counting runs, the size of the queue.

``GET /api/runs`` and ``/metrics`` read through these; runs and triggers themselves are read by
:mod:`engine.store.runs`, errors (listed and counted) by :mod:`engine.store.resolutions`.
Nothing here writes.

The backlog is counted with the partial index ``ix_triggers_open``'s own predicate written as
SQL literals, so the planner answers it from that index (which holds only open triggers) and
never from the table, however many closed triggers it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import OPEN_TRIGGER_STATUSES, runs, triggers

# Open triggers: the partial index's own predicate, which every count of the backlog filters on.
OPEN = triggers.c.status.in_([sa.literal_column(f"'{s}'") for s in OPEN_TRIGGER_STATUSES])
_BACKLOG = sa.select(sa.func.count()).select_from(triggers).where(OPEN)


def _run_filters(
    status: str | None, tree_name: str | None, source_id: str | None
) -> list[sa.ColumnElement[bool]]:
    found = []
    if status is not None:
        found.append(runs.c.status == status)
    if tree_name is not None:
        found.append(runs.c.tree_name == tree_name)
    if source_id is not None:
        found.append(runs.c.source_id == source_id)
    return found


def count_runs(
    connection: Connection,
    *,
    status: str | None = None,
    tree_name: str | None = None,
    source_id: str | None = None,
) -> int:
    """How many runs :func:`engine.store.runs.list_runs` pages through with these filters."""
    statement = sa.select(sa.func.count()).select_from(runs)
    statement = statement.where(*_run_filters(status, tree_name, source_id))
    return int(connection.execute(statement).scalar_one())


def open_trigger_count(connection: Connection) -> int:
    """Triggers New or Work In Progress (due or not): the queue's backlog, from its index."""
    return int(connection.execute(_BACKLOG).scalar_one())


__all__ = ["OPEN", "count_runs", "open_trigger_count"]
