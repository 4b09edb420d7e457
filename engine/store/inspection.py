"""Read-only queries for inspection: counting runs, listing errors, the size of the queue.

The HTTP adapter's lists (``GET /api/runs``, ``GET /api/errors``) and ``/metrics`` read through
these; runs and triggers themselves are read by :mod:`engine.store.runs`. Nothing here writes.

The backlog is counted with the partial index ``ix_triggers_open``'s own predicate written as
SQL literals, so the planner answers it from that index (which holds only open triggers) and
never from the table, however many closed triggers it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import RunError
from engine.store.tables import OPEN_TRIGGER_STATUSES, errors, runs, triggers

_OPEN = triggers.c.status.in_([sa.literal_column(f"'{s}'") for s in OPEN_TRIGGER_STATUSES])
_BACKLOG = sa.select(sa.func.count()).select_from(triggers).where(_OPEN)


@dataclass(frozen=True)
class ListedError:
    """An error found by :func:`list_errors`, with the run it was recorded on."""

    run_id: int
    error: RunError


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


def _error_filters(
    run_id: int | None, status: str | None, error_type: str | None
) -> list[sa.ColumnElement[bool]]:
    found = []
    if run_id is not None:
        found.append(errors.c.run_id == run_id)
    if status is not None:
        found.append(errors.c.status == status)
    if error_type is not None:
        found.append(errors.c.type == error_type)
    return found


def _error(row: Mapping[str, Any]) -> RunError:
    return RunError(
        id=row["id"],
        type=row["type"],
        status=row["status"],
        node=row["node"],
        loop_index=row["loop_index"],
        summary=row["summary"],
        text=row["text"],
        task_id=row["task_id"],
        trigger_id=row["trigger_id"],
        connector_to=row["connector_to"],
        created_at=row["created_at"],
    )


def list_errors(
    connection: Connection,
    *,
    run_id: int | None = None,
    status: str | None = None,
    error_type: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ListedError]:
    """Errors of every run, newest first, filtered by run, status and type."""
    statement = (
        sa.select(errors)
        .where(*_error_filters(run_id, status, error_type))
        .order_by(errors.c.created_at.desc(), errors.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = connection.execute(statement).mappings()
    return [ListedError(run_id=row["run_id"], error=_error(row)) for row in rows]


def count_errors(
    connection: Connection,
    *,
    run_id: int | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> int:
    """How many errors :func:`list_errors` pages through with these filters."""
    statement = sa.select(sa.func.count()).select_from(errors)
    statement = statement.where(*_error_filters(run_id, status, error_type))
    return int(connection.execute(statement).scalar_one())


def open_trigger_count(connection: Connection) -> int:
    """Triggers New or Work In Progress (due or not): the queue's backlog, from its index."""
    return int(connection.execute(_BACKLOG).scalar_one())


__all__ = ["ListedError", "count_errors", "count_runs", "list_errors", "open_trigger_count"]
