"""The INSERT every trigger row goes through: it copies its run's selection label itself.

A trigger's ``selection`` (what ``engine.tree.selection`` lets a worker claim by) is its run's tree
version's label. The insert reads it in SQL from the run it names, so no caller (createStart,
createDeferred, a resolution, a wait's timer, whatever later creates triggers) has to know
about labels, and a trigger can never carry a label other than its run's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.statuses import TriggerAction, TriggerStatus
from engine.store.bulk import BulkStatement
from engine.store.tables import runs, tree_versions, triggers

_RUN_LABEL = (
    sa.select(tree_versions.c.selection)
    .join(runs, runs.c.tree_version_id == tree_versions.c.id)
    .where(runs.c.id == sa.bindparam("run_id"))
    .scalar_subquery()
)


def insert_triggers(*, returning_id: bool = False) -> BulkStatement:
    """An INSERT of trigger rows naming every column but ``id`` and ``selection``."""
    columns = [c for c in triggers.columns if c.name not in ("id", "selection")]
    statement = triggers.insert().values(
        {**{c.name: sa.bindparam(c.name) for c in columns}, "selection": _RUN_LABEL}
    )
    if returning_id:
        statement = statement.returning(triggers.c.id)
    return BulkStatement(statement)


def new_trigger_row(
    action: TriggerAction,
    *,
    run_id: int,
    now: float,
    task_id: str | None = None,
    results: str | None = None,
    idempotency_key: str | None = None,
    due_at: float | None = None,
) -> dict[str, Any]:
    """A New trigger a step writes for work that resumes later (an iteration, a timer, a
    routine's return), with every column :func:`insert_triggers` names; due now by default."""
    return {
        "action": action.value,
        "status": TriggerStatus.NEW.value,
        "run_id": run_id,
        "task_id": task_id,
        "token": None,
        "results": results,
        "message": None,
        "idempotency_key": idempotency_key,
        "due_at": now if due_at is None else due_at,
        "lease_owner": None,
        "lease_until": None,
        "attempts": 0,
        "engine": None,
        "error": None,
        "created_at": now,
        "closed_at": None,
    }


__all__ = ["insert_triggers", "new_trigger_row"]
