"""Loops at run time: a loop head starts one Iteration trigger per element; its tail fires once.

A loop head (``system_loop_head_v1``) reached under loop index ``P`` renders its parameters,
reads the elements of its data source (``engine.tree.loop_source``) and closes its task at ``P``
with results ``Count`` (how many iterations) and ``Variable`` (its ``var_name``). For element
``k`` it adds a task of the head at loop index ``P/k`` (``/0``, ``/1``; ``/0/2`` inside the
iteration ``/0`` of an outer loop), status New, results ``Value`` (the element as text) and
``Index`` (``k``), and an Iteration trigger for that task. The rows are written in the
transaction of the step that reached the head, batched with its other rows, as a wait's timer
is: a crash keeps both or neither. Each Iteration trigger closes its task and walks the head's
connectors into the loop's body under the iteration's index, so every body node has one task
per iteration, addressed with ``Run.task(name, "/1")``; joins and junctions inside fire once per
iteration. A head reached a second time under the same index (two branches into it) does not
run again: its iterations' indexes are taken. A loop with nothing between head and tail reaches
its tail once per iteration.

Names inside an iteration: ``results`` resolves each node to its task in the innermost
enclosing iteration that has one, so ``results['Head']['Value']`` and ``['Index']`` are the
current iteration's, ``results['Body Node']`` is this iteration's, and nodes outside the loop are
as they were. The head's ``var_name`` (when given) names the element's value too: with
``var_name: item``, ``{{ item }}`` is ``results['Head']['Value']``. Everywhere, ``iterations``
maps a node's name to its results per loop index, in iteration order:
``iterations['Body Node']['/1']['output']``, or ``{% for index, r in iterations['Body Node'].items()
%}``. A node that ran in no iteration gives an empty mapping; a name that is no node of the tree
is a missing key.

The tail (``system_loop_tail_v1``) runs under the head's index ``P`` and records which
iterations reached it. ``All`` fires when every iteration has; ``Any`` on the first; ``Some``
when ``number`` have (or all of them, if there are fewer). With no elements it fires at once, so
the run goes on past an empty list. It fires once: iterations still running after an Any or Some
tail fired are not cancelled (their work, a deferred approval say, may matter); they run to the
end of their branches and their arrivals are recorded on the tail without firing it again. An
iteration whose branch stops before the tail (a false condition, an error) keeps an All tail
waiting, as a missing connector keeps an All join waiting.

What goes wrong in the data (malformed XML or JSON, a bad path, a path that selects no list,
more than :data:`MAX_ITERATIONS` elements, an unusable ``var_name``) is a Node Parameter Error
of the head's task: that branch stops, other branches go on, and Retry Task runs the head again
once the data is fixed. Skip Task of a failed head runs the loop with no iterations. A head whose
iterations would take the run past its budget of tasks, or the step past its budget of rows (a
task and a trigger each), fails with a Budget Error instead, before it adds any
(``engine.run.budgets``).

Iterations are separate triggers, so they are durable and resumable one by one, and deferrals
inside them (each iteration's task has its own token) resume only their own iteration. They do
not run at the same moment, though: triggers of one run are never processed concurrently (the
run's lease), so several workers share a loop only in turn, batch after batch, while the
parallelism the engine gives is across runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from engine import rows
from engine.handlers.builtin import DATA_SOURCE, LOOP_PATH, QUORUM_NUMBER, QUORUM_TYPE, VAR_NAME
from engine.records import ROOT_LOOP_INDEX
from engine.run.state import RunState, TaskState
from engine.statuses import ErrorType, TaskStatus, TriggerAction
from engine.tree.control import quorum
from engine.tree.loop_source import LoopSourceError, loop_values, var_name_problem
from engine.tree.model import Node

if TYPE_CHECKING:
    from engine.run.execution import Execution

MAX_ITERATIONS = 10_000
COUNT, VARIABLE, VALUE, INDEX = "Count", "Variable", "Value", "Index"


def child_index(parent: str, position: int) -> str:
    return f"/{position}" if parent == ROOT_LOOP_INDEX else f"{parent}/{position}"


def parent_index(index: str) -> str:
    return index.rsplit("/", 1)[0] or ROOT_LOOP_INDEX


def index_key(index: str) -> tuple[int, ...]:
    """Loop indexes in iteration order (``/2`` before ``/10``)."""
    return tuple(int(part) for part in index.split("/") if part)


def outer_index(index: str, depth: int) -> str:
    """The index of the iteration ``depth`` loops deep that ``index`` is in: /0/2 at 1 is /0."""
    parts = [part for part in index.split("/") if part][:depth]
    return "/" + "/".join(parts)


def enclosing(index: str) -> Iterator[str]:
    """The loop indexes an index is inside, outermost first, itself last: /0, /0/2."""
    parts = [part for part in index.split("/") if part]
    for depth in range(1, len(parts) + 1):
        yield "/" + "/".join(parts[:depth])


class Iterations(Mapping[str, Mapping[str, Any]]):
    """``iterations[node]``: that node's results per loop index, in iteration order."""

    __slots__ = ("_state",)

    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        if name not in self._state.tree.nodes:
            raise KeyError(name)
        found = {i: r[name] for i, r in self._state.loop_results.items() if name in r}
        return {index: found[index] for index in sorted(found, key=index_key)}

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.tree.nodes)

    def __len__(self) -> int:
        return len(self._state.tree.nodes)


def iteration_scope(state: RunState, loop_index: str) -> dict[str, Any]:
    """``results`` under ``loop_index`` and the loop variables of the enclosing iterations."""
    results: dict[str, Any] = dict(state.results)
    names: dict[str, Any] = {}
    for index in enclosing(loop_index):
        level = state.loop_results.get(index, {})
        results.update(level)
        outer = parent_index(index)
        for head in state.tree.loops:
            iteration = level.get(head)
            loop = state.latest.get((head, outer))
            if iteration is not None and loop is not None and loop.results.get(VARIABLE):
                names[loop.results[VARIABLE]] = iteration.get(VALUE, "")
    return {"results": results, **names}


class LoopSteps:
    """The loop nodes' steps, for one :class:`~engine.run.execution.Execution`.

    A collaborator of the walk rather than a part of it: it reads and changes the walk's run
    state and uses the walk's primitives (a new task, rendering, failing, following connectors),
    and the walk calls it when it reaches a loop head or tail, or processes an Iteration trigger.
    """

    def __init__(self, walk: Execution) -> None:
        self.walk = walk
        self.state = walk.state

    def iterate(self, task: TaskState | None) -> str | None:
        """Run one iteration: close its head task and walk into the body under its index."""
        walk = self.walk
        if task is None or task.status is not TaskStatus.NEW:
            found = "no task" if task is None else f"task status {task.status.value}"
            return f"Iteration trigger found {found}"
        node = self.state.tree.nodes[task.node]
        pair = self.state.tree.loops[node.name]
        task.move(TaskStatus.CLOSED, walk.now)
        walk.touch(node, task.loop_index)
        body = tuple(c for c in node.complete_connectors if c.target != pair.tail)
        if body:
            walk.follow(node, task, body)
        else:  # a loop with nothing inside: the iteration is at its tail at once
            walk.push((pair.tail, node.name, task.loop_index))
        walk.drain()
        return None

    def start(self, node: Node, loop_index: str) -> None:
        """Read the head's elements; add a task and an Iteration trigger for each."""
        walk = self.walk
        existing = self.state.latest.get((node.name, loop_index))
        if existing is not None and existing.status is not TaskStatus.FAILED:
            return  # a loop head runs once per loop index: its iterations' indexes are taken
        task = walk.new_task(node, TaskStatus.NEW, None, loop_index)
        if task is None:
            return
        parameters = walk.render(node, task, walk.scope(task))
        if parameters is None:
            return
        var_name = parameters.get(VAR_NAME, "").strip()
        try:
            problem = var_name_problem(var_name)
            if problem is not None:
                raise LoopSourceError(problem)
            values = loop_values(parameters[DATA_SOURCE], parameters[LOOP_PATH])
            if len(values) > MAX_ITERATIONS:
                raise LoopSourceError(
                    f"{LOOP_PATH} selects {len(values)} elements; a loop runs at most "
                    f"{MAX_ITERATIONS} iterations"
                )
        except LoopSourceError as exc:
            walk.fail(task, ErrorType.NODE_PARAMETER, f"Loop head {node.name!r}: {exc}", "")
            return
        refusal = walk.budget.refuse_iterations(self.state, node.name, len(values))
        if refusal is not None:
            walk.fail(task, ErrorType.BUDGET, refusal, "")
            return
        self.state.set_results(task, {COUNT: str(len(values)), VARIABLE: var_name})
        task.move(TaskStatus.CLOSED, walk.now)
        self._add_iterations(node, loop_index, values)
        if not values:
            self._judge_tail_of(node.name, loop_index)

    def _add_iterations(self, node: Node, loop_index: str, values: list[str]) -> None:
        now, run_id = self.walk.now, self.state.id
        for position, value in enumerate(values):
            index = child_index(loop_index, position)
            iteration = self.walk.add_task(node, TaskStatus.NEW, None, index)
            self.state.set_results(iteration, {VALUE: value, INDEX: str(position)})
            self.state.new_triggers.append(
                rows.trigger_row(
                    TriggerAction.ITERATION, run_id=run_id, now=now, task_id=iteration.id
                )
            )
        self.walk.budget.rows += len(values)  # their triggers; add_task counted the tasks

    def skip(self, node: Node, task: TaskState) -> None:
        """Skip Task of a failed head: closed with no iterations, so its tail fires."""
        self.state.set_results(task, {COUNT: "0", VARIABLE: ""})
        task.move(TaskStatus.CLOSED, self.walk.now)
        self._judge_tail_of(node.name, task.loop_index)

    def _judge_tail_of(self, head: str, loop_index: str) -> None:
        tail = self.state.tree.nodes[self.state.tree.loops[head].tail]
        task = self.state.latest.get((tail.name, loop_index))
        if task is None:
            task = self.walk.new_task(tail, TaskStatus.NEW, None, loop_index)
            if task is None:
                return
        if task.status is TaskStatus.NEW:
            self.judge_tail(tail, task)

    def arrive_at_tail(self, node: Node, iteration: str) -> None:
        """An iteration reached the tail: record it on the tail's task under the head's index."""
        loop_index = parent_index(iteration)
        task = self.state.latest.get((node.name, loop_index))
        if task is None:
            task = self.walk.new_task(node, TaskStatus.NEW, None, loop_index, arrived=(iteration,))
            if task is None:
                return
        if iteration not in task.arrived:
            task.arrived = (*task.arrived, iteration)
            task.mark_changed()
        if task.status is TaskStatus.NEW:  # a tail fires once; later arrivals are only recorded
            self.judge_tail(node, task)

    def judge_tail(self, node: Node, task: TaskState) -> None:
        """Fire the tail if enough iterations arrived; a bad type or number fails it."""
        walk = self.walk
        parameters = walk.render(node, task, walk.scope(task))
        if parameters is None:
            return
        head = self.state.tree.loop_tails[node.name].head
        loop = self.state.latest.get((head, task.loop_index))
        count = int(loop.results.get(COUNT, "0")) if loop is not None else 0
        try:
            wanted = quorum(parameters.get(QUORUM_TYPE, ""), parameters.get(QUORUM_NUMBER, ""))
        except ValueError as exc:
            walk.fail(task, ErrorType.NODE_PARAMETER, f"Loop tail {node.name!r}: {exc}", "")
            return
        if len(task.arrived) >= wanted.needed(count):
            task.move(TaskStatus.CLOSED, walk.now)
            walk.touch(node, task.loop_index)
            walk.follow(node, task, node.complete_connectors)


__all__ = [
    "MAX_ITERATIONS",
    "Iterations",
    "LoopSteps",
    "child_index",
    "index_key",
    "iteration_scope",
    "outer_index",
    "parent_index",
]
