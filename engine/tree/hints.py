"""What to tell someone looking at a run about each task that waits, fitted to its node.

A deferred task waits for one of three things, and the hint says which:

- **A wait** (``system_wait_v1``) fires by itself at its ``due_at``: its timer is a trigger that
  only a running worker processes (``treeflow worker``, or ``treeflow serve`` with workers), so
  the hint gives the time and says so; completing it earlier with its token is the alternative.
- **A routine call** waits for its child run: the hint names that run and how to look at it.
- **Anything else** waits for someone to complete it with results. The results worth giving are
  the ones the tree's conditions read (``engine.tree.reads``): the hint names them, with the
  constant each is compared with and the node that comparison leads to, and its example command
  uses the first constant of each. A node no condition reads is completed with no results.

The lines are plain text (never markup), built here rather than in the CLI so that every host
(the CLI, a future console) words them alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from engine.handlers.handler import Behaviour
from engine.records import ROOT_LOOP_INDEX, Run, Task
from engine.tree.model import Tree
from engine.tree.reads import ResultRead, results_read

WORKER_NEEDED = "a running worker (treeflow worker, or treeflow serve) processes that timer"


def _label(task: Task) -> str:
    return task.name if task.loop_index == ROOT_LOOP_INDEX else f"{task.name} ({task.loop_index})"


def example_results(reads: Sequence[ResultRead]) -> str:
    """Results XML giving each result read its first compared constant (else ``VALUE``)."""
    values: dict[str, str] = {}
    for read in reads:
        if read.result not in values or values[read.result] == "VALUE":
            values[read.result] = read.compared_with if read.compared_with is not None else "VALUE"
    items = "".join(
        f"<result name={quoteattr(name)}>{escape(value)}</result>" for name, value in values.items()
    )
    return f"<results>{items}</results>"


def _what_is_read(reads: Sequence[ResultRead]) -> str:
    """``Status (== 'Approved' to Approved, != 'Approved' to Denied)``, one part per result."""
    by_result: dict[str, list[str]] = {}
    for read in reads:
        parts = by_result.setdefault(read.result, [])
        if read.compared_with is not None:
            parts.append(f"{read.operator} {read.compared_with!r} to {read.target}")
        else:
            parts.append(f"to {read.target}")
    return ", ".join(f"{result} ({', '.join(parts)})" for result, parts in by_result.items())


def deferred_hint(tree: Tree | None, run: Run, task: Task) -> list[str]:
    """The lines that tell what the deferred ``task`` waits for and how to move it on.

    ``tree`` is the version the run runs on; without it (it could not be loaded) the hint is
    the generic one: complete the task with its token.
    """
    name, token = _label(task), task.token
    child = next((link for link in run.children if link.task_id == task.id), None)
    if child is not None:
        return [
            f"{name} waits for run {child.run_id} of routine {child.tree_name} "
            f"({child.status.value}); see: treeflow runs show {child.run_id}"
        ]
    node = tree.nodes.get(task.name) if tree is not None else None
    complete = f"treeflow deferred {token} --action Complete"
    if node is not None and node.handler.behaviour is Behaviour.WAIT:
        due = task.results.get("due_at", "its due time")
        return [
            f"{name} is a wait; its token is {token}. Its timer fires at {due}; "
            f"{WORKER_NEEDED}. To go on before then:",
            f"  {complete}",
        ]
    reads = results_read(tree, task.name) if tree is not None and node is not None else []
    if not reads:
        said = "no condition of its tree reads its results" if node is not None else ""
        ending = f" ({said})" if said else ""
        first = f"{name} is deferred; its token is {token}. Complete it with{ending}:"
        return [first, f"  {complete}"]
    return [
        f"{name} is deferred; its token is {token}. Its tree's conditions read "
        f"{_what_is_read(reads)}. Complete it with:",
        f"  {complete} --results {shlex.quote(example_results(reads))}",
    ]


__all__ = ["WORKER_NEEDED", "deferred_hint", "example_results"]
