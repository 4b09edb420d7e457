"""Settings of the control nodes (join, junction, wait), read from their parameters.

A control node's parameters are templates like any other, so a setting is known at load only
when it is a constant. The same parsing serves both moments: the loader reports a bad constant
as a problem of the tree (:func:`control_problems`), and the execution reports a bad rendered
value as a Node Parameter Error of the task (:func:`wait_seconds` raising ``ValueError``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import networkx as nx

from engine.handlers.builtin import UNIT_SECONDS, WAIT_TIME, WAIT_UNIT
from engine.handlers.handler import Behaviour
from engine.tree.expressions import Template
from engine.tree.junctions import junction_problems
from engine.tree.model import Node

_AMOUNT = re.compile(r"\d+(\.\d+)?")

# (node, parameter or None, message): where the loader reports it.
Problem = tuple[str, str | None, str]


def constant(template: Template) -> str | None:
    """The text of a template without any Jinja markup (a constant); None otherwise."""
    return None if "{" in template.source else template.source


def wait_seconds(amount: str, unit: str) -> float:
    """Seconds a wait of ``amount`` ``unit`` lasts; ``ValueError`` naming the bad value.

    The amount is a non-negative decimal number (``90``, ``1.5``); exponents, signs, NaN and
    infinities are refused rather than guessed at. The unit is one of :data:`UNIT_SECONDS`.
    """
    text = amount.strip()
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{WAIT_TIME!r} is {amount!r}, not a number of zero or more")
    if unit not in UNIT_SECONDS:
        choices = ", ".join(UNIT_SECONDS)
        raise ValueError(f"{WAIT_UNIT!r} is {unit!r}, not one of {choices}")
    seconds = float(text) * UNIT_SECONDS[unit]
    if not math.isfinite(seconds):
        raise ValueError(f"{WAIT_TIME!r} is {amount!r}, too large a number")
    return seconds


def _join_problem(name: str, node: Node, incoming: int) -> Problem | None:
    """A Some join waits for at least 1 and at most all of its incoming connectors."""
    kind, number = node.parameters.get("type"), node.parameters.get("number")
    if kind is None or number is None or constant(kind) != "Some":
        return None
    text = constant(number)
    if text is None or (text.isdigit() and 1 <= int(text) <= incoming):
        return None
    message = f"a Some join needs 'number' from 1 to {incoming} (its incoming connectors), "
    return name, "number", message + f"not {text!r}"


def _wait_problem(name: str, node: Node) -> Problem | None:
    """A constant wait time must be a number; a constant unit is checked by its menu."""
    amount = node.parameters.get(WAIT_TIME)
    text = None if amount is None else constant(amount)
    if text is None:
        return None
    try:
        wait_seconds(text, "Second")
    except ValueError as exc:
        return name, WAIT_TIME, str(exc)
    return None


def control_problems(graph: nx.DiGraph, nodes: Mapping[str, Node]) -> list[Problem]:
    """Every problem of a control node's settings that shows without running the tree."""
    problems: list[Problem] = []
    junctions = []
    for name, node in nodes.items():
        behaviour = node.handler.behaviour
        found = None
        if behaviour is Behaviour.JOIN:
            found = _join_problem(name, node, graph.in_degree(name))
        elif behaviour is Behaviour.WAIT:
            found = _wait_problem(name, node)
        elif behaviour is Behaviour.JUNCTION:
            junctions.append(name)
        if found is not None:
            problems.append(found)
    problems.extend((name, None, message) for name, message in junction_problems(graph, junctions))
    return problems


__all__ = [
    "constant",
    "control_problems",
    "wait_seconds",
]
