"""The checks of a tree's whole graph, once its nodes and connectors are read.

A node is judged where it is read (``engine.tree.loader``); what only the graph can tell is
judged here: exactly one start node and no connector into it, no cycles (each reported once,
at the connector that closes it), the control nodes' settings (``engine.tree.control``), loop
heads paired with their tails (``engine.tree.loop_pairs``), and reachability from the start
(a warning: Kinetic keeps disconnected nodes, ``engine.tree.leniency``). The problems go to the
builder's ``problem``, so that one TreeError still lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import networkx as nx

from engine.handlers.handler import Behaviour
from engine.tree import leniency
from engine.tree.control import control_problems
from engine.tree.loop_pairs import loop_structure
from engine.tree.model import LoopPair, Node
from engine.tree.yaml_reader import Path

START_HANDLER = "system_start_v1"


@dataclass
class GraphChecks:
    """The graph a builder gathered, and where its connectors and problems are."""

    graph: nx.DiGraph  # every node name, and an edge for every connector 'to' one
    edge_paths: dict[tuple[str, str], Path]  # the first connector of each edge
    opaque: set[str]  # nodes whose connectors could not be read
    problem: Callable[..., None]  # the builder's problem(message, *path, node=...)
    warn: Callable[..., None]  # the builder's warn: what Kinetic accepts (engine.tree.leniency)

    def check_graph(self, nodes: Mapping[str, Node]) -> str:
        starts = [n for n, node in nodes.items() if node.handler.behaviour is Behaviour.START]
        if not starts:
            message = f"a tree needs one node with handler {START_HANDLER}; it has none"
            self.problem(message, "nodes")
        for extra in starts[1:]:
            message = f"a second start node: {starts[0]!r} already uses {START_HANDLER}"
            self.problem(message, "nodes", extra, "handler", node=extra)
        into_start = list(self.graph.in_edges(starts))
        for source, start in into_start:
            path = self.edge_paths[(source, start)]
            self.problem(f"connector into the start node {start!r}", *path, node=source)
        self._check_cycles(self.graph.edge_subgraph(set(self.graph.edges) - set(into_start)))
        # A junction without incoming connectors is not also called unreachable.
        said: set[str] = set()
        for name, parameter, message in control_problems(self.graph, nodes):
            path = ("parameters", parameter) if parameter else ()
            self.problem(message, "nodes", name, *path, node=name)
            said.update(() if parameter else (name,))
        if starts and not self.opaque:  # with connectors unread, what is reachable is unknown
            reachable = set(starts).union(*(nx.descendants(self.graph, s) for s in starts))
            for name in self.graph:
                if name in reachable or name in said:
                    continue
                self.warn(leniency.unreachable(starts[0]), "nodes", name, node=name)
        return starts[0] if starts else ""

    def check_loops(self, nodes: Mapping[str, Node]) -> dict[str, LoopPair]:
        pairs, problems = loop_structure(self.graph, nodes)
        for name, parameter, message in problems:
            path = ("parameters", parameter) if parameter else ()
            self.problem(message, "nodes", name, *path, node=name)
        return pairs

    def _check_cycles(self, graph: nx.DiGraph) -> None:
        """Report each cycle once, at the connector that closes it (found from its first node)."""
        order = {name: index for index, name in enumerate(self.graph)}
        components = nx.strongly_connected_components(graph)
        for component in sorted(components, key=lambda c: min(order[n] for n in c)):
            first = min(component, key=order.__getitem__)
            if len(component) == 1 and not graph.has_edge(first, first):
                continue
            edges = nx.find_cycle(graph.subgraph(component), source=first)
            source, target = edges[-1][:2]
            cycle = " -> ".join([*(edge[0] for edge in edges), target])
            message = f"connector to {target!r} closes a cycle: {cycle} (only a loop head and "
            message += "its tail repeat work, once per element of the head's data source)"
            self.problem(message, *self.edge_paths[(source, target)], node=source)


__all__ = ["START_HANDLER", "GraphChecks"]
