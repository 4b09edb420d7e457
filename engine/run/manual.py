"""A manual trigger processed: the run resumes at the node an admin named, with given results.

``engine.processing.run_control`` accepts it (who, why, which node, which results). Here, in
memory like any trigger: if the node's latest task is deferred and no Complete is queued for it,
the trigger completes that task with the results, as a createDeferred would (a task waiting for
its retry policy's next attempt is completed the same way, and the attempt is not made);
otherwise it records a new task of the node, Closed with the results (the node's handler is not
called), and follows its Complete connectors. The rest of the run goes on from there as usual.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.records import ROOT_LOOP_INDEX
from engine.run.execution import Execution
from engine.run.state import RunState, TaskState
from engine.statuses import RunStatus, TaskStatus, transition


def resume(
    state: RunState, execution: Execution, node_name: str | None, results: Mapping[str, str]
) -> tuple[str | None, TaskState | None]:
    """Apply a manual trigger: (why it was refused or None, the deferred task it completed,
    which the commit fences as a wait's timer is)."""
    node = state.tree.nodes.get(node_name or "")
    if node is None:
        return f"Manual trigger names no node of the run's tree: {node_name!r}", None
    if state.status is RunStatus.COMPLETED or state.status is RunStatus.STAGED:
        return f"Manual trigger found the run {state.status.value}", None
    task = state.latest.get((node.name, ROOT_LOOP_INDEX))
    if task is not None and task.status is TaskStatus.DEFERRED and not task.completing:
        execution.complete(task, results)
        return None, task
    if task is not None and task.status is TaskStatus.RETRYING:  # its Retry then finds it done
        execution.complete(task, results)
        return None, None
    state.status = transition(state.status, RunStatus.STARTED)
    added = execution.new_task(node, TaskStatus.NEW)
    if added is not None:
        state.set_results(added, dict(results))
        added.move(TaskStatus.CLOSED, execution.now)
        execution.touch(node, ROOT_LOOP_INDEX)
        execution.follow(node, added, node.complete_connectors)
    execution.drain()
    return None, None


__all__ = ["resume"]
