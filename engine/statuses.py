"""Statuses of runs, tasks, triggers and errors, and the one function that moves between them.

Values are Kinetic Task's spelling (``TaskStatus.DEFERRED == "Deferred"``) because they travel
over the wire unchanged. Handlers never set a status: the runner decides from what the handler
returned, and every change goes through :func:`transition`, which refuses an illegal move.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from engine.errors import IllegalTransition


class RunStatus(StrEnum):
    STAGED = "Staged"  # accepted, its Root trigger not yet processed
    STARTED = "Started"
    COMPLETED = "Completed"  # nothing pending, no active error
    FAILED = "Failed"  # nothing pending, an active error remains
    CANCELLED = "Cancelled"  # stopped by Engine.cancel_run: nothing of it runs any more


class TaskStatus(StrEnum):
    NEW = "New"  # created, waiting (a join that has not fired yet)
    DEFERRED = "Deferred"
    CLOSED = "Closed"
    FAILED = "Failed"
    # Its handler failed and its retry policy (engine.tree.retry) runs it again later, from a
    # Retry trigger: pending like a deferred task, with no error recorded yet.
    RETRYING = "Retrying"


class TriggerStatus(StrEnum):
    NEW = "New"
    WORK_IN_PROGRESS = "Work In Progress"
    CLOSED = "Closed"
    FAILED = "Failed"
    # Held back, unprocessed, while its run has an active Budget Error; New again once an error
    # of the run is resolved (engine.run.budgets). Nothing claims it meanwhile.
    PAUSED = "Paused"
    # Closed unprocessed because its run was cancelled (engine.processing.cancel).
    CANCELLED = "Cancelled"


class TriggerAction(StrEnum):
    ROOT = "Root"
    COMPLETE = "Complete"
    UPDATE = "Update"
    RESOLVE = "Resolve"  # applies an error's resolution (``Engine.resolve_error``)
    ITERATION = "Iteration"  # runs one iteration of a loop (``engine.run.loops``)
    RETRY = "Retry"  # the next attempt of a failed handler (``engine.run.retries``)
    CANCEL = "Cancel"  # cancels its run (``engine.processing.cancel``)
    MANUAL = "Manual"  # resumes a run at a node, given by an admin (``engine.run.manual``)


class ConnectorType(StrEnum):
    COMPLETE = "Complete"
    CREATE = "Create"
    UPDATE = "Update"


class ErrorType(StrEnum):
    HANDLER = "Handler Error"
    NODE_PARAMETER = "Node Parameter Error"
    CONNECTOR = "Connector Error"
    MISSING_HANDLER = "Missing Handler Error"
    MISSING_ROUTINE = "Missing Routine Error"
    TRIGGER = "Trigger Error"
    # treeflow's own: a node whose work would go past one of the run's budgets (engine.run.budgets)
    BUDGET = "Budget Error"


class ErrorStatus(StrEnum):
    ACTIVE = "Active"
    HANDLED = "Handled"  # resolved (Kinetic's word for it)


class ResolutionAction(StrEnum):
    """How an error is resolved; which apply to an error is :func:`allowed_resolutions`."""

    RETRY_TASK = "Retry Task"
    SKIP_TASK = "Skip Task"
    DO_NOTHING = "Do Nothing"
    CONTINUE_BRANCH = "Continue Branch"
    CANCEL_BRANCH = "Cancel Branch"


_NODE_ACTIONS = (
    ResolutionAction.RETRY_TASK,
    ResolutionAction.SKIP_TASK,
    ResolutionAction.DO_NOTHING,
)
# Kinetic Task's table (its v2 API's availableErrorActions), for the types treeflow records; a
# Budget Error is a node's, resolved as a Handler Error is (Retry Task once the budget is raised).
RESOLUTIONS: dict[ErrorType, tuple[ResolutionAction, ...]] = {
    ErrorType.HANDLER: _NODE_ACTIONS,
    ErrorType.NODE_PARAMETER: _NODE_ACTIONS,
    ErrorType.MISSING_HANDLER: _NODE_ACTIONS,
    ErrorType.MISSING_ROUTINE: _NODE_ACTIONS,
    ErrorType.BUDGET: _NODE_ACTIONS,
    ErrorType.CONNECTOR: (ResolutionAction.CONTINUE_BRANCH, ResolutionAction.CANCEL_BRANCH),
    ErrorType.TRIGGER: (ResolutionAction.DO_NOTHING,),
}


def allowed_resolutions(error_type: str, *, at_node: bool) -> tuple[ResolutionAction, ...]:
    """The actions that may resolve an error of ``error_type``.

    An error raised before any node ran (``at_node`` false: a trigger whose tree version no
    longer builds is a Missing Handler Error of the trigger, not of a task) has no task to skip:
    Retry Task processes its trigger again. A type treeflow does not know allows Do Nothing.
    """
    try:
        actions = RESOLUTIONS[ErrorType(error_type)]
    except ValueError:
        return (ResolutionAction.DO_NOTHING,)
    if not at_node:
        actions = tuple(a for a in actions if a is not ResolutionAction.SKIP_TASK)
    return actions


_S = TypeVar("_S", RunStatus, TaskStatus, TriggerStatus)

_ALLOWED: dict[type, dict[object, frozenset[object]]] = {
    RunStatus: {
        RunStatus.STAGED: frozenset({RunStatus.STARTED, RunStatus.CANCELLED}),
        RunStatus.STARTED: frozenset(
            {RunStatus.STARTED, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
        ),
        # A completed run has nothing pending, so nothing moves it; a failed run re-opens
        # when its error is resolved, or is cancelled. A cancelled run stays cancelled.
        RunStatus.COMPLETED: frozenset({RunStatus.COMPLETED}),
        RunStatus.FAILED: frozenset(
            {RunStatus.FAILED, RunStatus.STARTED, RunStatus.COMPLETED, RunStatus.CANCELLED}
        ),
        RunStatus.CANCELLED: frozenset({RunStatus.CANCELLED}),
    },
    TaskStatus: {
        TaskStatus.NEW: frozenset(
            {
                TaskStatus.NEW,
                TaskStatus.DEFERRED,
                TaskStatus.CLOSED,
                TaskStatus.FAILED,
                TaskStatus.RETRYING,
            }
        ),
        # The next attempt ends as the first would have: done, deferred, failed, or again later.
        TaskStatus.RETRYING: frozenset(
            {TaskStatus.RETRYING, TaskStatus.DEFERRED, TaskStatus.CLOSED, TaskStatus.FAILED}
        ),
        TaskStatus.DEFERRED: frozenset({TaskStatus.DEFERRED, TaskStatus.CLOSED}),
        TaskStatus.CLOSED: frozenset(),
        # Retry Task re-opens a failed join; Skip Task closes a failed task without running it.
        TaskStatus.FAILED: frozenset({TaskStatus.NEW, TaskStatus.CLOSED}),
    },
    TriggerStatus: {
        TriggerStatus.NEW: frozenset({TriggerStatus.WORK_IN_PROGRESS, TriggerStatus.CANCELLED}),
        TriggerStatus.WORK_IN_PROGRESS: frozenset(
            {
                TriggerStatus.NEW,
                TriggerStatus.CLOSED,
                TriggerStatus.FAILED,
                TriggerStatus.PAUSED,
                TriggerStatus.CANCELLED,
            }
        ),
        TriggerStatus.CLOSED: frozenset(),
        TriggerStatus.FAILED: frozenset({TriggerStatus.NEW}),
        TriggerStatus.PAUSED: frozenset({TriggerStatus.NEW, TriggerStatus.CANCELLED}),
        TriggerStatus.CANCELLED: frozenset(),
    },
}

_KIND = {RunStatus: "run", TaskStatus: "task", TriggerStatus: "trigger"}


def transition(current: _S, new: _S) -> _S:
    """Return ``new`` if a ``current`` record may move to it; raise :class:`IllegalTransition`."""
    kind = type(current)
    if new not in _ALLOWED[kind][current]:
        raise IllegalTransition(kind=_KIND[kind], current=current.value, new=new.value)
    return new


__all__ = [
    "RESOLUTIONS",
    "ConnectorType",
    "ErrorStatus",
    "ErrorType",
    "ResolutionAction",
    "RunStatus",
    "TaskStatus",
    "TriggerAction",
    "TriggerStatus",
    "allowed_resolutions",
    "transition",
]
