"""Junction regions: computed from the graph once, when a tree loads; judged on each resume.

A junction (``system_junction_v1``) waits for every branch between its *parent* and itself to
go as far as it can. The parent is the nearest node that every path from the start to the
junction passes through (its immediate dominator): for the usual shape, a node that splits into
branches which meet again at the junction, it is that splitting node, the nearest common
ancestor of the junction's incoming branches. Because every path into the junction passes the
parent, nothing outside the region can reach the junction, so looking at the region is enough.
The region is the parent and every node on a path from the parent to the junction.

At run time (see :func:`region_finished`) a region has finished when its parent has completed,
no task in it is deferred, and no node in it has an active error. A connector whose condition
was false simply leaves the nodes behind it without tasks, which counts as finished, so a
junction fires even when every branch into it was false, as long as its parent completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import networkx as nx

from engine.records import ROOT_LOOP_INDEX
from engine.statuses import TaskStatus


@dataclass(frozen=True)
class JunctionRegion:
    """The part of a tree one junction waits on: its parent and the nodes between."""

    junction: str
    parent: str
    nodes: frozenset[str]  # the parent and every node on a path from it to the junction


def junction_regions(
    graph: nx.DiGraph, start: str, junctions: Iterable[str]
) -> dict[str, JunctionRegion]:
    """The region of each junction reachable from ``start`` (unreachable ones are reported
    by the loader as such)."""
    names = [name for name in junctions if graph.in_degree(name)]
    if not names:
        return {}
    dominators = nx.immediate_dominators(graph, start)
    # Topological order of the strongly connected components: defined even with cycles (a loop
    # head and its tail), where a plain topological sort of the nodes is not.
    condensed = nx.condensation(graph)
    rank = {component: i for i, component in enumerate(nx.topological_sort(condensed))}
    order = {name: rank[component] for name, component in condensed.graph["mapping"].items()}
    regions: dict[str, JunctionRegion] = {}  # in topological order: inner junctions first
    for name in sorted(names, key=order.__getitem__):
        parent = dominators.get(name)
        if parent is None or parent == name:
            continue
        between = nx.ancestors(graph, name) & nx.descendants(graph, parent)
        regions[name] = JunctionRegion(name, parent, frozenset({parent, *between} - {name}))
    return regions


def members(regions: Mapping[str, JunctionRegion]) -> dict[str, tuple[str, ...]]:
    """Node name -> the junctions whose region holds it: what to re-check when it moves."""
    found: dict[str, list[str]] = {}
    for name, region in regions.items():
        for node in region.nodes:
            found.setdefault(node, []).append(name)
    return {node: tuple(sorted(names)) for node, names in found.items()}


def junction_problems(graph: nx.DiGraph, junctions: Iterable[str]) -> list[tuple[str, str]]:
    """(node, message) for each junction that can never fire, whatever happens at run time."""
    return [
        (name, "a junction needs at least one incoming connector; it has none")
        for name in junctions
        if graph.in_degree(name) == 0
    ]


class _Task(Protocol):
    """What :func:`region_finished` reads of a task (``engine.run.state.TaskState`` has it)."""

    node: str
    status: TaskStatus
    loop_index: str


def region_finished(
    region: JunctionRegion,
    tasks: Iterable[_Task],
    error_nodes: Mapping[str, int],
    loop_index: str = ROOT_LOOP_INDEX,
) -> bool:
    """Whether every branch of ``region`` has gone as far as it can.

    True when the parent has a completed task, no task of the region is deferred or waiting for
    its handler's next attempt (it can still resume its branch), and no node of the region has an
    active error (resolving it with Retry Task or Skip Task would let its branch go on). Nodes
    without tasks were never reached: a false connector (or a branch that went elsewhere) left
    them behind, and they count as finished.

    Inside a loop, a junction is judged per iteration: only the tasks of ``loop_index`` and of
    iterations nested in it count. Active errors are counted by node, not by iteration, so an
    error in one iteration keeps the same junction of every iteration waiting.
    """
    nodes = region.nodes
    within = ROOT_LOOP_INDEX if loop_index == ROOT_LOOP_INDEX else loop_index + "/"
    if any(count and node in nodes for node, count in error_nodes.items()):
        return False
    parent_completed = False
    for task in tasks:
        index = task.loop_index
        if task.node in nodes and (index == loop_index or index.startswith(within)):
            if task.status is TaskStatus.DEFERRED or task.status is TaskStatus.RETRYING:
                return False  # it can still resume, or run again, and go on
            if task.node == region.parent and task.status is TaskStatus.CLOSED:
                parent_completed = True
    return parent_completed


__all__ = [
    "JunctionRegion",
    "junction_problems",
    "junction_regions",
    "members",
    "region_finished",
]
