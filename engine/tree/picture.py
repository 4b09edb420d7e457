"""Pictures of trees and runs: a tree or a run becomes Graphviz DOT text, drawn by ``dot``.

Only the DOT text is built in Python (with the ``graphviz`` package, which also quotes it);
drawing SVG or PNG runs Graphviz's ``dot`` executable, so a missing Graphviz is one clear
:class:`~engine.errors.GraphvizNotFound` naming ``dot``, and ``.dot`` output needs none.

A tree is drawn as nodes labelled with their name and handler, and connectors styled by type
(Complete solid, Create dashed, Update dotted) with their label and condition. A run is the
same picture of the version it ran on, each node filled by the status of its current task:
Closed, Deferred, Failed, New (a join still waiting), or not reached. A failed task that a Retry
Task replaced is an earlier attempt, not current: the node shows the new task's status and the
number of attempts, so a run completed after a retry is not drawn red. Text from the tree is
data, never Graphviz markup: backslashes are doubled and labels are never HTML-like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import cast

import graphviz

from engine.errors import BadRequest, GraphvizNotFound
from engine.handlers.handler import Behaviour
from engine.records import Run, Task
from engine.statuses import ConnectorType, ErrorStatus, ResolutionAction, TaskStatus
from engine.tree.model import Connector, Node, Tree

FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}
CONNECTOR_STYLE = {
    ConnectorType.COMPLETE: {"style": "solid", "color": "black"},
    ConnectorType.CREATE: {"style": "dashed", "color": "royalblue"},
    ConnectorType.UPDATE: {"style": "dotted", "color": "darkorange"},
}
NOT_REACHED = "Not reached"
STATUS_FILL = {
    TaskStatus.CLOSED.value: "#c8e6c9",
    TaskStatus.DEFERRED.value: "#fff59d",
    TaskStatus.RETRYING.value: "#ffcc80",
    TaskStatus.FAILED.value: "#ef9a9a",
    TaskStatus.NEW.value: "#bbdefb",
    NOT_REACHED: "#ffffff",
}
# A node that ran several times (two branches into a plain node, loop iterations) shows the
# status that most needs attention among its current tasks.
_PRIORITY = (
    TaskStatus.FAILED,
    TaskStatus.RETRYING,
    TaskStatus.DEFERRED,
    TaskStatus.NEW,
    TaskStatus.CLOSED,
)
_LEGEND = "connectors: solid Complete, dashed Create, dotted Update"


def _text(*lines: str) -> str:
    """Lines as one Graphviz label: each line's backslashes doubled, joined by ``\\n``."""
    return cast(str, graphviz.nohtml("\\n".join(line.replace("\\", "\\\\") for line in lines)))


def _id(name: str) -> str:
    return cast(str, graphviz.nohtml(name.replace("\\", "\\\\")))


def _shape(node: Node) -> str:
    if node.handler.behaviour is Behaviour.START:
        return "oval"
    if node.handler.behaviour is Behaviour.JOIN:
        return "hexagon"
    return "box"


def _node_lines(node: Node) -> list[str]:
    return [node.name, node.handler_id + (" (defers)" if node.defers else "")]


def _connector_label(connector: Connector) -> str:
    lines = [connector.label] if connector.label else []
    if connector.condition is not None:
        lines.append(f"[{connector.condition.source}]")
    return _text(*lines) if lines else ""


def _comment(text: str) -> str:
    """``text`` on one line: DOT's ``//`` comment ends at a line break, and whatever a tree's
    name held after one would be read as DOT (another graph, a link to a script...)."""
    return " ".join(text.splitlines())


def _digraph(tree: Tree, title: Sequence[str]) -> graphviz.Digraph:
    graph = graphviz.Digraph(name=_id(tree.key.name), comment=_comment(str(tree.key)))
    graph.attr(rankdir="TB", label=_text(*title, _LEGEND), labelloc="t", fontname="Helvetica")
    graph.attr("node", fontname="Helvetica", style="rounded,filled", fillcolor="#f5f5f5")
    graph.attr("edge", fontname="Helvetica", fontsize="10")
    return graph


def _edges(graph: graphviz.Digraph, tree: Tree, muted: Iterable[str] = ()) -> None:
    grey = set(muted)
    for node in tree.nodes.values():
        for connector in node.connectors:
            attributes = dict(CONNECTOR_STYLE[connector.type])
            if connector.target in grey:
                attributes.update(color="gray70", fontcolor="gray50")
            label = _connector_label(connector)
            graph.edge(
                _id(connector.source),
                _id(connector.target),
                label=label or None,
                tooltip=_text(connector.type.value),
                **attributes,
            )


def tree_dot(tree: Tree) -> str:
    """The tree as DOT: every node (name and handler) and every connector (styled by type)."""
    graph = _digraph(tree, [str(tree.key)])
    for node in tree.nodes.values():
        graph.node(_id(node.name), label=_text(*_node_lines(node)), shape=_shape(node))
    _edges(graph, tree)
    return cast(str, graph.source)


def retried_tasks(run: Run) -> frozenset[str]:
    """The failed tasks a Retry Task replaced with a new one: earlier attempts, not current."""
    return frozenset(
        error.task_id
        for error in run.errors
        if error.task_id
        and error.status == ErrorStatus.HANDLED
        and error.resolution_action == ResolutionAction.RETRY_TASK.value
    )


def current_tasks(tasks: Sequence[Task], retried: frozenset[str] = frozenset()) -> list[Task]:
    """``tasks`` less the attempts a retry replaced (a join's re-opened task stays: not Failed)."""
    return [t for t in tasks if not (t.id in retried and t.status is TaskStatus.FAILED)]


def node_status(tasks: Sequence[Task], retried: frozenset[str] = frozenset()) -> str:
    """What a node's picture shows for its tasks in a run: a task status, or not reached.

    Only current tasks count: after a successful Retry Task the node shows the new task's
    status, not the failed attempt's (``retried`` are the ids ``retried_tasks`` gives).
    """
    statuses = {task.status for task in current_tasks(tasks, retried)}
    return next((status.value for status in _PRIORITY if status in statuses), NOT_REACHED)


def node_label(tasks: Sequence[Task], retried: frozenset[str] = frozenset()) -> str:
    """The status line of a node's picture: ``Closed``, ``Closed x2`` (ran twice, e.g. two
    branches or loop iterations), ``Closed (2 attempts)`` (a retry replaced a failed task)."""
    current = current_tasks(tasks, retried)
    label = node_status(tasks, retried)
    if len(current) > 1:
        label += f" x{len(current)}"
    if len(current) < len(tasks):
        label += f" ({len(tasks)} attempts)" if len(current) == 1 else f" ({len(tasks)} tasks)"
    return label


def run_dot(tree: Tree, run: Run, links: Mapping[str, str] | None = None) -> str:
    """The run drawn on its tree version: each node filled by the status of its current task(s),
    labelled with it and with how many times it ran (``node_label``). ``links``: node name to
    the address its box links to in an SVG (the console's task anchors)."""
    title = f"Run {run.id} of {run.tree_name} (version {run.tree_version}): {run.status.value}"
    graph = _digraph(tree, [title, f"source id {run.source_id!r}"])
    tasks: dict[str, list[Task]] = {}
    for task in run.tasks:
        tasks.setdefault(task.name, []).append(task)
    muted = []
    retried = retried_tasks(run)
    for node in tree.nodes.values():
        ran = tasks.get(node.name, [])
        status = node_status(ran, retried)
        attributes = {"fillcolor": STATUS_FILL[status]}
        if links and node.name in links:
            attributes["URL"] = links[node.name]
        if status == NOT_REACHED:
            muted.append(node.name)
            attributes.update(style="rounded,dashed", color="gray60", fontcolor="gray45")
        label = _text(*_node_lines(node), node_label(ran, retried))
        graph.node(_id(node.name), label=label, shape=_shape(node), **attributes)
    _edges(graph, tree, muted)
    return cast(str, graph.source)


def output_format(path: str | Path) -> str:
    """The picture format a file name asks for: ``svg``, ``png`` or ``dot`` (also ``.gv``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        choices = ", ".join(FORMATS)
        raise BadRequest(field="output file", reason=f"{str(path)!r} does not end in {choices}")
    return FORMATS[suffix]


def render(dot: str, fmt: str) -> bytes:
    """DOT text drawn as ``fmt`` (``svg``, ``png``) by Graphviz's ``dot``; ``dot`` is the text."""
    if fmt == "dot":
        return dot.encode("utf-8")
    try:
        return cast(bytes, graphviz.pipe("dot", fmt, dot.encode("utf-8")))
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFound(executable="dot", output_format=fmt) from None


def write_picture(dot: str, path: str | Path) -> str:
    """Draw DOT text into ``path`` in the format its suffix names; returns that format."""
    fmt = output_format(path)
    data = render(dot, fmt)
    Path(path).write_bytes(data)
    return fmt


__all__ = [
    "CONNECTOR_STYLE",
    "FORMATS",
    "NOT_REACHED",
    "STATUS_FILL",
    "current_tasks",
    "node_label",
    "node_status",
    "output_format",
    "render",
    "retried_tasks",
    "run_dot",
    "tree_dot",
    "write_picture",
]
