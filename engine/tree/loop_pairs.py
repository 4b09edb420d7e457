"""Loop heads and their tails, paired and checked once, when a tree loads.

A loop is drawn as Kinetic draws it: the head (``system_loop_head_v1``) has a connector straight
to its tail (``system_loop_tail_v1``), which is what pairs them, and connectors into the loop's
*body*, whose branches end at the tail. Iterations come from the head's data, not from a
connector back, so a loop adds no cycle to the graph; a connector from inside a loop back to its
head (or any other cycle) is refused by the loader's cycle check.

The body is every node the head's other connectors reach without passing the tail. At run time
each body node runs once per iteration, under that iteration's loop index, and the tail runs
under the head's own index; so the body must be closed: entered only from its head, and left
only through its tail (a nested loop is part of the outer body, head, body and tail). These
rules, a head connected directly to exactly one tail (by a connector without a condition: it
pairs them and is never followed), and a tail paired with exactly one head are what
:func:`loop_structure` checks; each problem names the node where it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from engine.handlers.builtin import LOOP_PATH, QUORUM_NUMBER, QUORUM_TYPE, VAR_NAME
from engine.handlers.handler import Behaviour
from engine.tree.control import Problem, constant, quorum
from engine.tree.loop_source import LoopSourceError, check_path, var_name_problem
from engine.tree.model import LoopPair, Node


def _body(graph: nx.DiGraph, head: str, tail: str) -> set[str]:
    """Every node reachable from the head's connectors other than the tail, not through it."""
    inside = graph.subgraph(n for n in graph if n != tail)
    found: set[str] = set()
    for first in graph.successors(head):
        if first != tail and first not in found:
            found.add(first)
            found.update(nx.descendants(inside, first))
    found.discard(head)  # only a cycle leads back to the head; the cycle check says so
    return found


def _tail_problem(name: str, node: Node) -> Problem | None:
    """A constant Some tail's number must be one :func:`quorum` takes."""
    kind, number = node.parameters.get(QUORUM_TYPE), node.parameters.get(QUORUM_NUMBER)
    if kind is None or constant(kind) != "Some":
        return None
    text = "" if number is None else constant(number)
    if text is None:
        return None
    try:
        quorum("Some", text)
    except ValueError:
        message = f"a Some loop tail needs 'number', a whole number of 1 or more, not {text!r}"
        return name, QUORUM_NUMBER, message
    return None


def _head_problem(name: str, node: Node) -> Problem | None:
    """A constant loop path that does not compile, or a constant var_name templates cannot use."""
    variable = node.parameters.get(VAR_NAME)
    text = None if variable is None else constant(variable)
    problem = None if text is None else var_name_problem(text.strip())
    if problem is not None:
        return name, VAR_NAME, problem
    path = node.parameters.get(LOOP_PATH)
    text = None if path is None else constant(path)
    if not text or not text.strip():
        return None
    try:
        check_path(text)
    except LoopSourceError as exc:
        return name, LOOP_PATH, str(exc)
    return None


def loop_structure(
    graph: nx.DiGraph, nodes: Mapping[str, Node]
) -> tuple[dict[str, LoopPair], list[Problem]]:
    """Each loop head's pair, and every problem of the loops' shape or constant settings."""
    problems: list[Problem] = []
    pairs: dict[str, LoopPair] = {}
    heads_of: dict[str, list[str]] = {}
    for name, node in nodes.items():
        behaviour = node.handler.behaviour
        if behaviour is Behaviour.LOOP_TAIL:
            heads_of.setdefault(name, [])
            found = _tail_problem(name, node)
        elif behaviour is Behaviour.LOOP_HEAD:
            found = _head_problem(name, node)
            tails = [
                t
                for t in graph.successors(name)
                if t in nodes and nodes[t].handler.behaviour is Behaviour.LOOP_TAIL
            ]
            if len(tails) == 1:
                if any(c.target == tails[0] and c.condition for c in node.connectors):
                    message = f"the connector to loop tail {tails[0]!r} pairs the two and is not "
                    problems.append((name, None, message + "followed: it takes no condition"))
                heads_of.setdefault(tails[0], []).append(name)
                pairs[name] = LoopPair(name, tails[0], frozenset(_body(graph, name, tails[0])))
            elif not tails:
                message = "a loop head must connect directly to its loop tail; it connects to none"
                problems.append((name, None, message))
            else:
                message = f"a loop head connects directly to one loop tail, not {len(tails)}: "
                problems.append((name, None, message + ", ".join(map(repr, tails))))
        else:
            continue
        if found is not None:
            problems.append(found)
    for tail, heads in heads_of.items():
        if not heads:
            message = "a loop tail needs a loop head connected directly to it; none is"
            problems.append((tail, None, message))
        elif len(heads) > 1:
            message = "a loop tail pairs with one loop head; connected directly from "
            problems.append((tail, None, message + ", ".join(map(repr, heads))))
            for head in heads:
                pairs.pop(head, None)
    for pair in pairs.values():
        problems.extend(_closed_body_problems(graph, pair))
    return pairs, problems


def _closed_body_problems(graph: nx.DiGraph, pair: LoopPair) -> list[Problem]:
    """A body entered other than from its head, or a tail reached from outside its loop."""
    problems: list[Problem] = []
    inside = pair.body | {pair.head}
    for node in sorted(pair.body):
        for before in graph.predecessors(node):
            if before not in inside:
                message = f"connector to {node!r} enters loop {pair.head!r} from outside it; "
                problems.append((before, None, message + "a loop is entered only by its head"))
    for before in graph.predecessors(pair.tail):
        if before not in inside:
            message = f"connector to loop tail {pair.tail!r} from outside its loop {pair.head!r}"
            problems.append((before, None, message))
    if pair.body and not any(graph.has_edge(node, pair.tail) for node in pair.body):
        message = f"no node inside the loop connects to its tail {pair.tail!r}: "
        problems.append((pair.head, None, message + "its iterations could never reach it"))
    return problems


__all__ = ["loop_structure"]
