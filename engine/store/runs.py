"""Reading and writing runs, tasks and errors.

Writes are batched: one executemany per table per step. Reads for a claimed batch load every
run of the batch, and the tasks of the runs that have any, in one query each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import RunNotFound, TriggerNotFound
from engine.records import Run, RunError, RunLink, Task, Trigger
from engine.rows import RowValues
from engine.statuses import ErrorStatus, RunStatus, TaskStatus, TriggerAction, TriggerStatus
from engine.store.bulk import IdListStatement, insert_all
from engine.store.inspection import run_filters
from engine.store.tables import errors, runs, tasks, tree_versions, triggers
from engine.store.trigger_rows import insert_triggers

_INSERT_RUN = insert_all(runs, returning_id=True)
_INSERT_TRIGGER = insert_triggers(returning_id=True)
# A batch's reads, by its list of run ids in one parameter (engine.store.bulk.IdListStatement).
_RUNS_BY_ID = IdListStatement(lambda one_of: sa.select(runs).where(one_of(runs.c.id)))
_TASKS_OF_RUNS = IdListStatement(
    lambda one_of: sa.select(tasks).where(one_of(tasks.c.run_id)).order_by(tasks.c.id)
)
_ACTIVE_ERRORS = IdListStatement(
    lambda one_of: (
        sa.select(errors.c.run_id, errors.c.node, errors.c.type, sa.func.count().label("count"))
        .where(one_of(errors.c.run_id), errors.c.status == ErrorStatus.ACTIVE.value)
        .group_by(errors.c.run_id, errors.c.node, errors.c.type)
    )
)


def insert_run(connection: Connection, row: Mapping[str, Any]) -> int:
    """Insert a run row (``engine.rows.run_row``); the driver-level insert keeps createStart's
    cost at its commit. Returns the run's id."""
    return int(_INSERT_RUN.scalar(connection, row))


def insert_trigger(connection: Connection, row: Mapping[str, Any]) -> int:
    """Insert a trigger row (``engine.rows.trigger_row``); returns the trigger's id."""
    return int(_INSERT_TRIGGER.scalar(connection, row))


def insert_run_rows(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert many run rows; their ids, in order (one round trip on PostgreSQL)."""
    return [int(run_id) for run_id in _INSERT_RUN.each(connection, rows)]


def insert_trigger_rows(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert many trigger rows; their ids, in order (one round trip on PostgreSQL)."""
    return [int(trigger_id) for trigger_id in _INSERT_TRIGGER.each(connection, rows)]


def load_runs(connection: Connection, run_ids: Sequence[int]) -> dict[int, RowValues]:
    if not run_ids:
        return {}
    return {row["id"]: row for row in _RUNS_BY_ID.rows(connection, run_ids)}


def load_tasks(connection: Connection, run_ids: Sequence[int]) -> dict[int, list[RowValues]]:
    by_run: dict[int, list[RowValues]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        for row in _TASKS_OF_RUNS.rows(connection, run_ids):
            by_run[row["run_id"]].append(row)
    return by_run


def active_error_counts(connection: Connection, run_ids: Sequence[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    statement = (
        sa.select(errors.c.run_id, sa.func.count())
        .where(errors.c.run_id.in_(run_ids), errors.c.status == ErrorStatus.ACTIVE.value)
        .group_by(errors.c.run_id)
    )
    return {run_id: count for run_id, count in connection.execute(statement)}


def active_errors(
    connection: Connection, run_ids: Sequence[int]
) -> dict[int, dict[tuple[str, str], int]]:
    """Run id -> (node, error type) -> its active errors.

    By node, they keep junctions waiting; by type, a Budget Error holds the run's other triggers
    back (``engine.run.budgets``); together, they are the run's count.
    """
    if not run_ids:
        return {}
    found: dict[int, dict[tuple[str, str], int]] = {}
    for row in _ACTIVE_ERRORS.rows(connection, run_ids):
        found.setdefault(row["run_id"], {})[(row["node"], row["type"])] = row["count"]
    return found


def _task(row: RowValues) -> Task:
    return Task(
        id=row["id"],
        name=row["node"],
        handler_id=row["handler_id"],
        status=TaskStatus(row["status"]),
        results=row["results"],
        token=row["token"],
        loop_index=row["loop_index"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        attempt=row["attempt"],
        last_error=row["last_error"],
        arrived=tuple(row["arrived"] or ()),
    )


def error_record(row: RowValues) -> RunError:
    """A row of ``errors`` as the read model callers get."""
    return RunError(
        id=row["id"],
        run_id=row["run_id"],
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
        resolution_action=row["resolution_action"],
        resolution_message=row["resolution_message"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        resolution_trigger_id=row["resolution_trigger_id"],
    )


def _run(
    row: RowValues,
    version: int,
    task_rows: Iterable[RowValues],
    error_rows: Iterable[RowValues],
    child_rows: Iterable[RowValues] = (),
) -> Run:
    return Run(
        id=row["id"],
        status=RunStatus(row["status"]),
        source_name=row["source_name"],
        source_group=row["source_group"],
        tree_name=row["tree_name"],
        tree_version=version,
        source_id=row["source_id"],
        inputs=row["inputs"],
        values=row["values"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        tasks=tuple(_task(t) for t in task_rows),
        errors=tuple(error_record(e) for e in error_rows),
        parent_run_id=row["parent_run_id"],
        parent_task_id=row["parent_task_id"],
        again_of=row["again_of"],
        source_data=row.get("source_data") or {},
        children=tuple(
            RunLink(c["id"], c["parent_task_id"], c["tree_name"], RunStatus(c["status"]))
            for c in child_rows
        ),
    )


def read_run(connection: Connection, run_id: int) -> Run:
    statement = (
        sa.select(runs, tree_versions.c.version.label("tree_version"))
        .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
        .where(runs.c.id == run_id)
    )
    row = connection.execute(statement).mappings().first()
    if row is None:
        raise RunNotFound(run_id=run_id)
    task_rows = connection.execute(
        sa.select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.id)
    ).mappings()
    error_rows = connection.execute(
        sa.select(errors).where(errors.c.run_id == run_id).order_by(errors.c.id)
    ).mappings()
    child_rows = connection.execute(
        sa.select(runs.c.id, runs.c.parent_task_id, runs.c.tree_name, runs.c.status)
        .where(runs.c.parent_run_id == run_id)
        .order_by(runs.c.id)
    ).mappings()
    return _run(row, row["tree_version"], task_rows, error_rows, child_rows)


def list_runs(
    connection: Connection, *, limit: int = 50, offset: int = 0, **filters: Any
) -> list[Run]:
    """Runs newest first, without their tasks (read one run for those); ``filters`` are those
    of :func:`engine.store.inspection.run_filters`."""
    statement = (
        sa.select(runs, tree_versions.c.version.label("tree_version"))
        .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
        .where(*run_filters(**filters))
        .order_by(runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        _run(row, row["tree_version"], (), ()) for row in connection.execute(statement).mappings()
    ]


def _deferred_filters(
    tree_name: str | None, created_by: str | None
) -> list[sa.ColumnElement[bool]]:
    # token IS NOT NULL as the partial index ux_tasks_token says it: only tasks that deferred.
    found = [tasks.c.token.is_not(None), tasks.c.status == TaskStatus.DEFERRED.value]
    found += run_filters(tree_name=tree_name, created_by=created_by)
    return found


def list_deferred_tasks(
    connection: Connection,
    *,
    tree_name: str | None = None,
    created_by: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[tuple[Run, Task]]:
    """Deferred tasks (what waits for a person or a callback), the latest to start waiting
    first, each with its run (without the run's tasks), by tree and by the run's creator."""
    statement = (
        sa.select(
            runs,
            tree_versions.c.version.label("tree_version"),
            *(column.label(f"task_{column.name}") for column in tasks.c),
        )
        .join(runs, runs.c.id == tasks.c.run_id)
        .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
        .where(*_deferred_filters(tree_name, created_by))
        # Not by id alone: SQLite would walk the whole table in its key's order instead of the
        # partial token index, which holds only the tasks that deferred.
        .order_by(tasks.c.updated_at.desc(), tasks.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    found = []
    for row in connection.execute(statement).mappings():
        task_row = {column.name: row[f"task_{column.name}"] for column in tasks.c}
        found.append((_run(row, row["tree_version"], (), ()), _task(task_row)))
    return found


def count_deferred_tasks(
    connection: Connection, *, tree_name: str | None = None, created_by: str | None = None
) -> int:
    """How many tasks :func:`list_deferred_tasks` pages through with these filters."""
    statement = (
        sa.select(sa.func.count())
        .select_from(tasks.join(runs, runs.c.id == tasks.c.run_id))
        .where(*_deferred_filters(tree_name, created_by))
    )
    return int(connection.execute(statement).scalar_one())


def tree_version_of(connection: Connection, run_id: int) -> int:
    """The id of the tree version a run runs on; RunNotFound if there is no such run."""
    version_id = connection.execute(
        sa.select(runs.c.tree_version_id).where(runs.c.id == run_id)
    ).scalar_one_or_none()
    if version_id is None:
        raise RunNotFound(run_id=run_id)
    return int(version_id)


def read_trigger(connection: Connection, trigger_id: int) -> Trigger:
    row = (
        connection.execute(sa.select(triggers).where(triggers.c.id == trigger_id))
        .mappings()
        .first()
    )
    if row is None:
        raise TriggerNotFound(trigger_id=trigger_id)
    return trigger_record(row)


def trigger_record(row: RowValues) -> Trigger:
    return Trigger(
        id=row["id"],
        action=TriggerAction(row["action"]),
        status=TriggerStatus(row["status"]),
        run_id=row["run_id"],
        task_id=row["task_id"],
        token=row["token"],
        message=row["message"],
        idempotency_key=row["idempotency_key"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        engine=row["engine"],
        error=row["error"],
        requested_by=row["requested_by"],
        node=row["node"],
    )


__all__ = [
    "active_error_counts",
    "active_errors",
    "count_deferred_tasks",
    "error_record",
    "insert_run",
    "insert_run_rows",
    "insert_trigger",
    "insert_trigger_rows",
    "list_deferred_tasks",
    "list_runs",
    "load_runs",
    "load_tasks",
    "read_run",
    "read_trigger",
    "tree_version_of",
    "trigger_record",
]
