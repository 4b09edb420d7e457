"""Settings of the control nodes (join, loop tail, junction, wait), read from their parameters.

A control node's parameters are templates like any other, so a setting is known at load only
when it is a constant. The same parsing serves both moments: the loader reports a bad constant
as a problem of the tree (:func:`control_problems`, and ``engine.tree.loop_pairs`` for tails),
and the execution reports a bad rendered value as a Node Parameter Error of the task
(:func:`quorum` and :func:`wait_seconds` raising ``ValueError``), so a value refused in the file
is refused the same way when a template renders it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from engine.handlers.builtin import (
    QUORUM_NUMBER,
    QUORUM_TYPE,
    QUORUM_TYPES,
    UNIT_SECONDS,
    WAIT_TIME,
    WAIT_UNIT,
)
from engine.handlers.handler import Behaviour
from engine.tree.expressions import Template
from engine.tree.junctions import junction_problems
from engine.tree.model import Node

_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
_WHOLE = re.compile(r"[0-9]+")

# (node, parameter or None, message): where the loader reports it.
Problem = tuple[str, str | None, str]


def constant(template: Template) -> str | None:
    """The text of a template without any Jinja markup (a constant); None otherwise."""
    return None if "{" in template.source else template.source


@dataclass(frozen=True)
class Quorum:
    """How many arrivals a join or a loop tail waits for: all, any one, or ``number`` of them."""

    type: str
    number: int = 0

    def needed(self, expected: int) -> int:
        """Arrivals that meet it when ``expected`` can come (never more than all of them)."""
        if self.type == "All":
            return expected
        if self.type == "Any":
            return min(1, expected)
        return min(self.number, expected)


def quorum(kind: str, number: str, *, most: int | None = None) -> Quorum:
    """A join's or loop tail's ``type`` and ``number``; ``ValueError`` naming the bad value.

    An empty type is ``All``, the parameter's default. ``number`` counts for ``Some`` only: a
    whole number of 1 or more, and at most ``most`` when that is known (a join's incoming
    connectors; a loop's iterations are known only when it runs, so a tail waits for all of
    them when there are fewer).
    """
    kind = kind.strip() or "All"
    if kind not in QUORUM_TYPES:
        raise ValueError(f"type {kind!r} is not {', '.join(QUORUM_TYPES[:-1])} or Some")
    if kind != "Some":
        return Quorum(kind)
    text = number.strip()
    count = int(text) if _WHOLE.fullmatch(text) else 0
    if count < 1 or (most is not None and count > most):
        bound = "of 1 or more" if most is None else f"from 1 to {most}"
        raise ValueError(f"number {number!r} is not a whole number {bound}")
    return Quorum(kind, count)


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
    """A constant Some join's number must be one :func:`quorum` takes for its connectors."""
    kind, number = node.parameters.get(QUORUM_TYPE), node.parameters.get(QUORUM_NUMBER)
    if kind is None or number is None or constant(kind) != "Some":
        return None
    text = constant(number)
    if text is None:
        return None
    try:
        quorum("Some", text, most=incoming)
    except ValueError:
        message = f"a Some join needs 'number' from 1 to {incoming} (its incoming connectors), "
        return name, QUORUM_NUMBER, message + f"not {text!r}"
    return None


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
    "Quorum",
    "constant",
    "control_problems",
    "quorum",
    "wait_seconds",
]
