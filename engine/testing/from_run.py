"""A test case written from a finished run (``treeflow test --from-run ID``): a regression test.

The case starts the run's tree with the run's source id and inputs, at the instant the run was
created, and gives every plain node the results its handler gave (one entry per task, in order;
a Handler Error becomes ``error:`` with its summary). A deferring node's results are split: the
names its handler declares (``deferral_token`` aside, which the engine makes) are what its
handler gave; the others came with its completion, which becomes a ``complete`` step, in the
order the tasks closed, as does a closed wait (an ``advance`` by its time to wait). Expected are
the run's status, the nodes in the order they ran, every node's results outside loops (tokens
and ``due_at`` aside: they differ from run to run) and its errors' nodes and types.

What a run does not record is left out: Update calls (merged into the results, so the final
values are still expected), resolutions of errors, and the results of nodes inside routine runs
(their handlers are called for real when the case runs).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from engine.engine import Engine
from engine.errors import RunNotFinished
from engine.handlers.handler import Behaviour
from engine.records import ROOT_LOOP_INDEX, Run, RunError, Task
from engine.statuses import RunStatus, TaskStatus
from engine.tree.model import Tree

VARYING = ("deferral_token", "due_at")  # made afresh by every run: never expected or given
HANDLER_ERROR = "Handler Error"


def case_from_run(engine: Engine, run_id: int) -> dict[str, Any]:
    """A tree test file (as data, ready for YAML) with one case that replays run ``run_id``."""
    run = engine.get_run(run_id)
    if run.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
        raise RunNotFinished(run_id=run_id, status=run.status.value)
    tree = engine.tree_of_run(run)
    case: dict[str, Any] = {
        "name": f"run {run.id} of {tree.key.name}, as it ran",
        "source_id": run.source_id,
        "at": datetime.fromtimestamp(run.created_at, UTC).isoformat(),
    }
    if run.inputs:
        case["inputs"] = dict(run.inputs)
    given = _given(run, tree)
    if given:
        case["given"] = given
    steps = _steps(run, tree)
    if steps:
        case["steps"] = steps
    case["expect"] = _expect(run)
    key = tree.key
    return {"tree": key.name, "source": key.source_name, "group": key.source_group, "cases": [case]}


def _handler_results(task: Task, tree: Tree) -> dict[str, str]:
    node = tree.nodes[task.name]
    results = {k: str(v) for k, v in task.results.items() if k not in VARYING}
    if not node.defers:
        return results
    return {k: v for k, v in results.items() if k in node.handler.results}


def _given(run: Run, tree: Tree) -> dict[str, Any]:
    failed = {e.task_id: _message(e) for e in run.errors if e.type == HANDLER_ERROR and e.task_id}
    given: dict[str, list[dict[str, Any]]] = {}
    for task in run.tasks:
        node = tree.nodes.get(task.name)
        if node is None or node.handler.behaviour is not Behaviour.PLAIN:
            continue
        if task.id in failed:
            entry: dict[str, Any] = {"error": failed[task.id]}
        elif task.status is TaskStatus.NEW:
            continue  # never called (its parameters failed, say)
        else:
            entry = {"results": _handler_results(task, tree)}
        given.setdefault(task.name, []).append(entry)
    return {name: entries[0] if len(entries) == 1 else entries for name, entries in given.items()}


def _message(error: RunError) -> str:
    """What the handler raised, without the summary's "HANDLER raised TYPE: " before it."""
    head, _, message = error.summary.partition(": ")
    return message if " raised " in head and message else error.summary


def _steps(run: Run, tree: Tree) -> list[dict[str, Any]]:
    closed = [
        task
        for task in run.tasks
        if task.name in tree.nodes
        and tree.nodes[task.name].defers
        and task.status is TaskStatus.CLOSED
    ]
    steps: list[dict[str, Any]] = []
    for task in sorted(closed, key=lambda t: t.updated_at):
        node = tree.nodes[task.name]
        if node.handler.behaviour is Behaviour.WAIT:
            waited = math.ceil((task.updated_at - task.created_at) * 1000) / 1000
            steps.append({"advance": waited})
            continue
        if node.handler.behaviour is not Behaviour.PLAIN:
            continue  # a routine call: its child run completes it
        given = _handler_results(task, tree)
        results = {
            k: str(v) for k, v in task.results.items() if k not in given and k not in VARYING
        }
        step: dict[str, Any] = {"complete": task.name}
        if results:
            step["results"] = results
        if task.loop_index != ROOT_LOOP_INDEX:
            step["loop_index"] = task.loop_index
        steps.append(step)
    return steps


def _expect(run: Run) -> dict[str, Any]:
    results: dict[str, dict[str, str]] = {}
    for task in run.tasks:
        kept = {k: str(v) for k, v in task.results.items() if k not in VARYING}
        if task.loop_index == ROOT_LOOP_INDEX and kept:
            results[task.name] = kept
    return {
        "status": run.status.value,
        "ran": [task.name for task in run.tasks],
        "results": results,
        "errors": [{"node": e.node, "type": e.type} for e in run.errors],
    }


__all__ = ["case_from_run"]
