"""The rows the engine writes for runs, triggers and errors: one builder each, every column named.

A run, a trigger and an error are each written from several places (createStart, an instance,
a routine call; createDeferred, a resolution, a wait's timer, a loop's iterations, a routine's
return; a failed node, a trigger that cannot be processed). Each is built here and nowhere else,
with a value for every column the store's inserts name, so a new column is given its default in
one place and no caller can forget one. The idempotency keys of the triggers the engine writes
for itself are here too: they are what makes each of them exactly once.

Rows are plain dicts because the store hands them to the database driver as they are (see
``engine.store.bulk``); this module knows the columns, not the tables, so the in-memory
execution (``engine.run``) builds rows without importing the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import ids
from engine.records import ROOT_LOOP_INDEX, TreeKey
from engine.statuses import ErrorStatus, ErrorType, RunStatus, TriggerAction, TriggerStatus

# A row's values by column name, as they are read: a dict built here, or the RowMapping the store
# reads (keyed by column objects too, hence the Any key), so that the rows the store reads reach
# the run layer without a copy and without it importing SQLAlchemy.
RowValues = Mapping[Any, Any]

# The statuses new rows start in, as text: an enum member's ``.value`` is a property, and these
# are written with every createStart.
_STAGED = str(RunStatus.STAGED)
_NEW = str(TriggerStatus.NEW)


def run_row(
    *,
    tree_version_id: int,
    key: TreeKey,
    source_id: str,
    inputs: Mapping[str, Any],
    now: float,
    values: Mapping[str, Any] | None = None,
    source_data: Mapping[str, Any] | None = None,
    parent_run_id: int | None = None,
    parent_task_id: str | None = None,
    call_depth: int = 0,
    root_run_id: int | None = None,
    again_of: int | None = None,
) -> dict[str, Any]:
    """A Staged, unleased run of a tree version: every column of ``runs`` but its id.

    A routine's run names the top-level run of its call tree (``root_run_id``), whose count of
    child runs it adds to (``engine.run.budgets``); a top-level run names none.
    """
    return {
        "tree_version_id": tree_version_id,
        "source_name": key.source_name,
        "source_group": key.source_group,
        "tree_name": key.name,
        "source_id": source_id,
        "status": _STAGED,
        "inputs": dict(inputs),
        "values": dict(values or {}),
        "source_data": dict(source_data or {}),
        "parent_run_id": parent_run_id,
        "parent_task_id": parent_task_id,
        "call_depth": call_depth,
        "root_run_id": root_run_id,
        "again_of": again_of,
        "revision": 0,
        "lease_owner": None,
        "lease_until": None,
        "created_at": now,
        "updated_at": now,
    }


def trigger_row(
    action: TriggerAction,
    *,
    run_id: int,
    now: float,
    task_id: str | None = None,
    token: str | None = None,
    results: str | None = None,
    message: str | None = None,
    idempotency_key: str | None = None,
    due_at: float | None = None,
    requested_by: str | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """A New, unclaimed trigger, due now unless ``due_at`` says later.

    Every column of ``triggers`` but the id, which the database assigns, and the selection
    label, which the store's insert copies from the run (``engine.store.trigger_rows``).
    """
    return {
        "action": str(action),  # a StrEnum: str() is its value, without the slow property
        "status": _NEW,
        "run_id": run_id,
        "task_id": task_id,
        "token": token,
        "results": results,
        "message": message,
        "idempotency_key": idempotency_key,
        "due_at": now if due_at is None else due_at,
        "lease_owner": None,
        "lease_until": None,
        "attempts": 0,
        "engine": None,
        "error": None,
        "requested_by": requested_by,
        "node": node,
        "created_at": now,
        "closed_at": None,
    }


def error_row(
    kind: ErrorType,
    *,
    run_id: int,
    summary: str,
    now: float,
    text: str = "",
    node: str = "",
    loop_index: str = ROOT_LOOP_INDEX,
    task_id: str | None = None,
    trigger_id: int | None = None,
    connector_to: str | None = None,
) -> dict[str, Any]:
    """An Active error with a new id; ``text`` (problem and traceback) defaults to the summary.

    ``node`` is empty for an error raised before any node ran (a trigger that could not be
    processed). The resolution columns are left out: a resolution sets them.
    """
    return {
        "id": ids.row_id(),
        "run_id": run_id,
        "task_id": task_id,
        "trigger_id": trigger_id,
        "node": node,
        "loop_index": loop_index,
        "type": kind.value,
        "status": ErrorStatus.ACTIVE.value,
        "summary": summary,
        "text": text or summary,
        "connector_to": connector_to,
        "created_at": now,
    }


def call_key(caller_task_id: str) -> str:
    """The idempotency key of a routine run's Root trigger: one child run per calling task."""
    return f"call:{caller_task_id}"


def return_key(caller_task_id: str) -> str:
    """The idempotency key of the Complete a routine's return writes: one per calling task."""
    return f"return:{caller_task_id}"


def timer_key(task_id: str) -> str:
    """The idempotency key of a wait's timer trigger: one timer per wait task."""
    return f"wait:{task_id}"


def retry_key(task_id: str, attempt: int) -> str:
    """The idempotency key of the Retry trigger that makes ``attempt`` of a task: one each."""
    return f"retry:{task_id}:{attempt}"


def cancel_key(run_id: int) -> str:
    """The idempotency key of a run's Cancel trigger: a run is cancelled once."""
    return f"cancel:{run_id}"


def resolve_key(error_id: str) -> str:
    """The idempotency key of an error's Resolve trigger: one accepted resolution per error."""
    return f"resolve:{error_id}"


__all__ = [
    "RowValues",
    "call_key",
    "cancel_key",
    "error_row",
    "resolve_key",
    "retry_key",
    "return_key",
    "run_row",
    "timer_key",
    "trigger_row",
]
