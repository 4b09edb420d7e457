"""Lists of triggers, newest first, by status and run: what Kinetic's v2 API lists as all
triggers, the backlog (New or Work In Progress) and the paused ones.

The triggers table has an index on ``status`` (workers claim by it), so the backlog and paused
views read only their rows; a count with the same filters pages them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import Trigger
from engine.store.runs import trigger_record
from engine.store.tables import triggers


def _conditions(statuses: Sequence[str] | None, run_id: int | None) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if statuses is not None:
        conditions.append(triggers.c.status.in_(list(statuses)))
    if run_id is not None:
        conditions.append(triggers.c.run_id == run_id)
    return conditions


def list_triggers(
    connection: Connection,
    *,
    statuses: Sequence[str] | None = None,
    run_id: int | None = None,
    limit: int,
    offset: int,
) -> list[Trigger]:
    statement = sa.select(triggers).where(*_conditions(statuses, run_id))
    statement = statement.order_by(triggers.c.id.desc()).limit(limit).offset(offset)
    return [trigger_record(row) for row in connection.execute(statement).mappings()]


def count_triggers(
    connection: Connection, *, statuses: Sequence[str] | None = None, run_id: int | None = None
) -> int:
    statement = sa.select(sa.func.count()).select_from(triggers)
    counted = connection.execute(statement.where(*_conditions(statuses, run_id))).scalar_one()
    return int(counted)


__all__ = ["count_triggers", "list_triggers"]
