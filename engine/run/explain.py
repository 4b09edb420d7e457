"""Why is a run waiting? What each open join, junction, loop tail, deferral, wait, routine call
and active error of a run waits for, read from its tasks and its tree (``Engine.explain``).

It is computed from a run's snapshot (the ``Run`` record, with each task's arrivals) and the
tree version it runs on, so it needs no database of its own and says what the engine would do:
a join waits for its direct incoming connectors to satisfy its type, a junction for its region
to finish (``engine.tree.junctions``), a loop tail for enough iterations, a deferral for a
createDeferred with its token, a wait for its timer, a routine call for its child run, and an
active error for a resolution. For each it names what is missing: the incoming connectors that
have not fired and how their sources stand, the region's deferred or failed tasks, the
iterations that have not arrived, the timer's due time, the child run.

**Extension point.** Each kind of open work is one *explainer*, a function of a
:class:`RunView` that yields :class:`~engine.records.Waiting` items; :data:`EXPLAINERS` lists
them in the order they are reported. A new kind of waiting (as retries were, added after the others)
adds its explainer to that tuple, or passes it to :func:`explain` in ``extra``; nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.handlers.builtin import QUORUM_NUMBER, QUORUM_TYPE
from engine.handlers.handler import Behaviour
from engine.records import ROOT_LOOP_INDEX, Explanation, Run, RunError, Task, Waiting
from engine.run.loops import child_index
from engine.statuses import ErrorStatus, RunStatus, TaskStatus, allowed_resolutions
from engine.tree.control import constant, quorum
from engine.tree.model import Node, Tree


@dataclass(frozen=True)
class RunView:
    """What an explainer reads: the run, its tree version, and the time now (UNIX seconds)."""

    run: Run
    tree: Tree
    now: float

    def latest(self, node: str, loop_index: str) -> Task | None:
        found = [t for t in self.run.tasks if t.name == node and t.loop_index == loop_index]
        return found[-1] if found else None

    def behaviour(self, task: Task) -> Behaviour | None:
        node = self.tree.nodes.get(task.name)
        return None if node is None else node.handler.behaviour

    def stands(self, node: str, loop_index: str) -> str:
        """How a node stands at a loop index, for messages: its status, or never reached."""
        task = self.latest(node, loop_index)
        if task is None:
            return f"{node} (not reached)"
        if task.status is TaskStatus.CLOSED:
            return f"{node} (Closed: its connector did not fire)"
        return f"{node} ({task.status.value})"


Explainer = Callable[[RunView], Iterable[Waiting]]


def _deferred(view: RunView) -> Iterator[Waiting]:
    """Deferrals, waits and routine calls: a deferred task, told apart by its behaviour."""
    children = {link.task_id: link for link in view.run.children}
    for task in view.run.tasks:
        if task.status is not TaskStatus.DEFERRED:
            continue
        behaviour, where = view.behaviour(task), (task.name, task.loop_index)
        if behaviour is Behaviour.WAIT:
            yield _wait(view, task)
        elif behaviour is Behaviour.ROUTINE:
            link = children.get(task.id)
            if link is None:
                text = "its routine run to be started (the trigger is pending)"
                yield Waiting("routine call", *where, text, task.id)
            else:
                text = (
                    f"routine run {link.run_id} ({link.tree_name}, {link.status.value}) to return"
                )
                yield Waiting("routine call", *where, text, task.id, child_run_id=link.run_id)
        else:
            text = f"a createDeferred Complete (or Update) with its token {task.token}"
            yield Waiting("deferral", *where, text, task.id, token=task.token)


def _retries(view: RunView) -> Iterator[Waiting]:
    """A node between attempts of its retry policy (``engine.run.retries``): its next attempt
    is a Retry trigger due later, which a running worker processes."""
    for task in view.run.tasks:
        if task.status is TaskStatus.RETRYING:
            text = (
                f"attempt {task.attempt + 1} of its handler, a Retry trigger due after the"
                f" back-off (attempt {task.attempt} failed: {task.last_error}); a worker must be"
                " running"
            )
            yield Waiting("retry", task.name, task.loop_index, text, task.id)


def _wait(view: RunView, task: Task) -> Waiting:
    due_at = str(task.results.get("due_at", ""))
    try:
        seconds = datetime.fromisoformat(due_at).timestamp() - view.now
    except ValueError:
        return Waiting("wait", task.name, task.loop_index, "its timer", task.id, task.token)
    when = f"in {seconds:.0f}s" if seconds >= 0 else f"{-seconds:.0f}s ago: for a worker"
    text = f"its timer, due at {due_at} ({when}), or a Complete with its token"
    return Waiting("wait", task.name, task.loop_index, text, task.id, task.token, due_at)


def _quorum_text(node: Node, expected: int) -> tuple[str, int | None]:
    """The node's type as written, and how many arrivals it needs (None: a template)."""
    kind, number = node.parameters.get(QUORUM_TYPE), node.parameters.get(QUORUM_NUMBER)
    kind_text = "All" if kind is None else constant(kind)
    number_text = "" if number is None else constant(number)
    if kind_text is None or number_text is None:
        return "a templated type", None
    try:
        wanted = quorum(kind_text, number_text)
    except ValueError:
        return f"type {kind_text!r}", None
    shown = f"Some {wanted.number}" if wanted.type == "Some" else wanted.type or "All"
    return f"type {shown}", wanted.needed(expected)


def _needs(needed: int | None, total: int, what: str, kind: str) -> str:
    """``2 of 3 WHAT (type Some 2)``; without the count when the type is a template."""
    return f"{'' if needed is None else f'{needed} of '}{total} {what} ({kind})"


def _joins(view: RunView) -> Iterator[Waiting]:
    for task in view.run.tasks:
        if task.status is not TaskStatus.NEW or view.behaviour(task) is not Behaviour.JOIN:
            continue
        node = view.tree.nodes[task.name]
        kind, needed = _quorum_text(node, len(node.incoming))
        missing = tuple(
            view.stands(source, task.loop_index)
            for source in node.incoming
            if source not in task.arrived
        )
        text = (
            f"{_needs(needed, len(node.incoming), 'incoming connectors', kind)}; arrived from "
            f"{', '.join(task.arrived) or 'none'}; not yet from {', '.join(missing) or 'none'}"
        )
        yield Waiting("join", task.name, task.loop_index, text, task.id, missing=missing)


def _junctions(view: RunView) -> Iterator[Waiting]:
    active = {e.node for e in view.run.errors if e.status == ErrorStatus.ACTIVE.value}
    for name, region in view.tree.junctions.items():
        indexes = {t.loop_index for t in view.run.tasks if t.name == region.parent}
        for index in sorted(indexes):
            task = view.latest(name, index)
            if task is not None and task.status is not TaskStatus.NEW:
                continue  # it fired
            within = ROOT_LOOP_INDEX if index == ROOT_LOOP_INDEX else index + "/"
            blocking = [
                f"{t.name} {t.loop_index} ({t.status.value})"
                for t in view.run.tasks
                if t.name in region.nodes
                and (t.loop_index == index or t.loop_index.startswith(within))
                and t.status in (TaskStatus.DEFERRED, TaskStatus.FAILED)
            ]
            blocking += [f"{node} (an active error)" for node in sorted(active & region.nodes)]
            parent = view.latest(region.parent, index)
            if parent is not None and parent.status is not TaskStatus.CLOSED:
                blocking.insert(0, f"{region.parent}, its parent ({parent.status.value})")
            text = f"every branch from {region.parent} to finish; still open: "
            text += ", ".join(blocking) or "none (it fires on the next step)"
            task_id = None if task is None else task.id
            yield Waiting("junction", name, index, text, task_id, missing=tuple(blocking))


def _loop_tails(view: RunView) -> Iterator[Waiting]:
    for task in view.run.tasks:
        if task.status is not TaskStatus.NEW or view.behaviour(task) is not Behaviour.LOOP_TAIL:
            continue
        head_name = view.tree.loop_tails[task.name].head
        head = view.latest(head_name, task.loop_index)
        count = int(head.results.get("Count", "0")) if head is not None else 0
        kind, needed = _quorum_text(view.tree.nodes[task.name], count)
        iterations = [child_index(task.loop_index, k) for k in range(count)]
        missing = tuple(index for index in iterations if index not in task.arrived)
        text = (
            f"{_needs(needed, count, f'iterations of {head_name}', kind)}; "
            f"{len(task.arrived)} arrived; not yet {', '.join(missing) or 'none'}"
        )
        yield Waiting("loop tail", task.name, task.loop_index, text, task.id, missing=missing)


def _errors(view: RunView) -> Iterator[Waiting]:
    for error in view.run.errors:
        if error.status != ErrorStatus.ACTIVE.value:
            continue
        yield _error(error)


def _error(error: RunError) -> Waiting:
    actions = allowed_resolutions(error.type, at_node=error.task_id is not None)
    choices = ", ".join(action.value for action in actions)
    text = f"a resolution of {error.type} {error.id} ({choices}): {error.summary}"
    return Waiting("error", error.node, error.loop_index, text, error.task_id)


def _start(view: RunView) -> Iterator[Waiting]:
    if view.run.status is RunStatus.STAGED:
        yield Waiting("start", view.tree.start, ROOT_LOOP_INDEX, "a worker to process its start")


EXPLAINERS: tuple[Explainer, ...] = (
    _start,
    _deferred,
    _retries,
    _joins,
    _junctions,
    _loop_tails,
    _errors,
)


def explain(
    run: Run,
    tree: Tree,
    *,
    now: float,
    children: Sequence[Explanation] = (),
    extra: Sequence[Explainer] = (),
) -> Explanation:
    """What ``run`` (on ``tree``) waits for at ``now``; ``children``: its open routine runs'."""
    view = RunView(run, tree, now)
    waiting = tuple(item for explainer in (*EXPLAINERS, *extra) for item in explainer(view))
    if waiting:
        summary = f"run {run.id} is {run.status.value}: {len(waiting)} open"
    else:
        summary = f"run {run.id} is {run.status.value}: nothing is open"
    return Explanation(run.id, run.status.value, summary, waiting, tuple(children))


__all__ = ["EXPLAINERS", "Explainer", "RunView", "explain"]
