"""Applying an error's resolution, when the Resolve trigger that carries it is processed.

``Engine.resolve_error`` checks the action against the error's type and records it on the error
row with a Resolve trigger (``engine.store.resolutions``); the runner applies it here, under the
run's lease like any other trigger, and marks the error Handled in the same commit.

Which actions resolve which errors is Kinetic Task's table (``engine.statuses.RESOLUTIONS``):

- Handler, Node Parameter, Missing Routine and Missing Handler Errors: **Retry Task** runs the
  failed node again (a new task, its parameters rendered again, against the results as they
  are now); **Skip Task** closes the failed task without running it, with no results, and
  follows its Complete connectors; **Do Nothing** leaves the branch stopped.
- Connector Errors: **Continue Branch** follows the connector as if its condition had held;
  **Cancel Branch** leaves it unfollowed, as if it had been false.
- Trigger Errors (a trigger that could not be processed: its task was no longer deferred, or
  it never finished within the attempts allowed): **Do Nothing**.

An error raised before any node ran has no node: a Missing Handler Error of a trigger whose tree
version no longer builds (a plugin is gone). Retry Task queues that trigger again (once the
plugin is back, it is processed as if for the first time); Skip Task has no task to skip and is
refused. Every resolution, Do Nothing and Cancel Branch included, re-judges the junctions whose
region holds the error's node: an active error kept them waiting, a resolved one does not.

Budget Errors (``engine.run.budgets``) take the node actions. While a run has one, its other
triggers are held back (Paused); the commit that applies a resolution of the run makes them New
again (``engine.store.steps``), and they are held back again if a Budget Error is still active.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.run.execution import Execution
from engine.run.state import RunState
from engine.statuses import ResolutionAction, TaskStatus


def apply_to_run(state: RunState, execution: Execution, error: Mapping[str, Any]) -> str | None:
    """Apply the resolution recorded on a node's ``error`` to the run in memory.

    Returns why it cannot be applied (the run is then left as it was), or None.
    """
    action = ResolutionAction(error["resolution_action"])
    node, kind = error["node"], error["type"]
    if action in (ResolutionAction.RETRY_TASK, ResolutionAction.SKIP_TASK):
        task = state.task_by_id(error["task_id"])
        if task is None or task.status is not TaskStatus.FAILED:
            found = "no task" if task is None else f"its task {task.status.value}"
            return f"{action.value} of error {error['id']} found {found}"
        state.forget_error(node, kind)
        if action is ResolutionAction.RETRY_TASK:
            execution.retry(task)
        else:
            execution.skip(task)
    elif action is ResolutionAction.CONTINUE_BRANCH:
        target = error["connector_to"]
        if target not in state.tree.nodes:
            return f"{action.value} of error {error['id']} names no connector target"
        state.forget_error(node, kind)
        execution.continue_branch(node, target, error["loop_index"])
    else:  # Do Nothing, Cancel Branch
        state.forget_error(node, kind)
        execution.settle(node, error["loop_index"])
    return None


__all__ = ["apply_to_run"]
