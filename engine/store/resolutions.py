"""Errors and their resolutions in the store: finding, listing, accepting, loading for the runner.

A resolution is accepted by a conditional UPDATE of the error row (still Active, no resolution
yet) in the transaction that inserts the Resolve trigger applying it. The UPDATE takes the row's
lock, so of concurrent resolutions of one error exactly one is accepted; the others find the
resolution set and are refused. The trigger's idempotency key ``resolve:<error id>`` (unique)
says the same a second time, in the schema. Marking the error Handled is the runner's part
(``engine.store.steps``), in the commit that closes that trigger.

:func:`list_errors` and :func:`count_errors` are the one error listing: the engine's
(``Engine.list_errors``, the CLI's ``errors list``) and ``GET /api/errors``'s pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rows
from engine.errors import BadResolution, ErrorAlreadyResolved, ErrorNotFound
from engine.records import RunError
from engine.statuses import ErrorStatus, TriggerAction, allowed_resolutions
from engine.store.runs import error_record, insert_trigger
from engine.store.tables import errors

ACTIVE = ErrorStatus.ACTIVE.value

_BY_ID = sa.select(errors).where(errors.c.id == sa.bindparam("error_id"))
_RESERVE = (
    errors.update()
    .where(
        errors.c.id == sa.bindparam("b_id"),
        errors.c.status == ACTIVE,
        errors.c.resolution_action.is_(None),
    )
    .values(
        resolution_action=sa.bindparam("b_action"),
        resolution_message=sa.bindparam("b_message"),
        resolved_by=sa.bindparam("b_by"),
        resolution_trigger_id=sa.bindparam("b_trigger"),
    )
)
_PENDING = sa.select(errors).where(
    errors.c.run_id.in_(sa.bindparam("run_ids", expanding=True)),
    errors.c.resolution_trigger_id.in_(sa.bindparam("trigger_ids", expanding=True)),
)


def read_error_row(connection: Connection, error_id: str) -> rows.RowValues | None:
    return connection.execute(_BY_ID, {"error_id": error_id}).mappings().first()


def accept(
    connection: Connection,
    *,
    error_id: str,
    action: str,
    message: str | None,
    resolved_by: str | None,
    now: float,
) -> dict[str, Any]:
    """Check a resolution, insert its Resolve trigger and record it on the error.

    Returns the trigger's row. Raises ErrorNotFound, ErrorAlreadyResolved or BadResolution
    (the caller's transaction then rolls back: nothing is written).
    """
    row = read_error_row(connection, error_id)
    if row is None:
        raise ErrorNotFound(error_id=error_id)
    if row["status"] != ACTIVE or row["resolution_action"] is not None:
        raise ErrorAlreadyResolved(error_id=error_id, action=row["resolution_action"])
    allowed = allowed_resolutions(row["type"], at_node=bool(row["node"]))
    if action not in allowed:
        raise BadResolution(action=action, error_type=row["type"], allowed=allowed)
    values = rows.trigger_row(
        TriggerAction.RESOLVE,
        run_id=row["run_id"],
        now=now,
        task_id=row["task_id"],
        message=message,
        idempotency_key=rows.resolve_key(error_id),
    )
    values["id"] = insert_trigger(connection, values)
    if not reserve(
        connection,
        error_id=error_id,
        action=action,
        message=message,
        resolved_by=resolved_by,
        trigger_id=values["id"],
    ):
        raise ErrorAlreadyResolved(error_id=error_id, action=None)
    return values


def reserve(
    connection: Connection,
    *,
    error_id: str,
    action: str,
    message: str | None,
    resolved_by: str | None,
    trigger_id: int,
) -> bool:
    """Record an accepted resolution on a still unresolved error; False if one was first."""
    result = connection.execute(
        _RESERVE,
        {
            "b_id": error_id,
            "b_action": action,
            "b_message": message,
            "b_by": resolved_by,
            "b_trigger": trigger_id,
        },
    )
    return result.rowcount == 1


def pending(
    connection: Connection, run_ids: Sequence[int], trigger_ids: Sequence[int]
) -> dict[int, rows.RowValues]:
    """Resolve trigger id -> the error row it resolves (for the triggers of a claimed batch)."""
    if not trigger_ids:
        return {}
    rows = connection.execute(
        _PENDING, {"run_ids": list(run_ids), "trigger_ids": list(trigger_ids)}
    ).mappings()
    return {row["resolution_trigger_id"]: row for row in rows}


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


def list_errors(
    connection: Connection,
    *,
    run_id: int | None = None,
    status: str | None = None,
    error_type: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RunError]:
    """Errors newest first (ids sort by creation), filtered by run, status and type."""
    statement = (
        sa.select(errors)
        .where(*_error_filters(run_id, status, error_type))
        .order_by(errors.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [error_record(row) for row in connection.execute(statement).mappings()]


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


__all__ = [
    "accept",
    "count_errors",
    "list_errors",
    "pending",
    "read_error_row",
    "reserve",
]
