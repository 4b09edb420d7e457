"""Reference checks: what a tree's templates and conditions read, judged against the tree.

Every ``results['Node']['Field']``, ``iterations['Node']``, ``inputs['Name']`` and
``values['Field']`` a parameter or a condition reads (``engine.tree.reads.references``) is
checked, in this order, and reported once, at the first rule it breaks:

1. the node exists (an error: the look-up can only fail, or read nothing);
2. its handler declares the result (a routine call: the routine's outputs). An error, unless
   the node defers (its completion may merge any result: a warning, "given at completion"), or
   its handler declares no results at all (what it gives is unknown: not judged). That warning
   is a *note* (``Tree.notes``: listed by ``validate --format json|sarif``, never an error,
   even strict), because reading what a completion gives is what a deferring node is for, and
   every approval tree does it;
3. the node is upstream of the reader: a warning when no path leads from it to the reader, or
   when some path from the start reaches the reader without it (the message names one). These
   are warnings, not errors: a parallel branch may have run first, and a tree read with
   ``missing: nil`` (what the Kinetic importer writes) reads the result as nil on purpose, so
   trees that ran before are never refused for them (``--strict`` makes them errors);
4. ``inputs['X']`` in a routine that declares its inputs, and ``values['X']`` in a tree that
   declares fields, name one of them (an error: the look-up can only fail).

Under ``missing: nil`` (an imported Kinetic tree) rules 2 and 4 are warnings: there an
undeclared result, input or field reads as nil, as Kinetic Task reads it, and real exports
rely on that (a routine reading an input it does not declare); an unknown node stays an error,
since a look-up on nil fails in Ruby too.

The reader of a parameter is its node (its own results are not there yet); the reader of a
condition is the connector's source, whose own results are. "On every path" is judged in one
pass over the graph in topological order: the nodes certain to have run before a node are the
intersection over its predecessors, or, at a join that waits for all its arrivals, their union.
``iterations['X']`` of a known node never fails (no iterations is an empty mapping), so it is
judged only by rules 1 and 3's "no path".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.handlers.builtin import QUORUM_TYPE
from engine.handlers.handler import Behaviour
from engine.tree.control import constant
from engine.tree.fields import FieldSpec
from engine.tree.model import Node
from engine.tree.reads import Reference, references
from engine.tree.routines import RoutineSignature
from engine.tree.suggest import did_you_mean
from engine.tree.yaml_reader import Path, scalar_text

NOTES = frozenset({"given-at-completion"})  # notes, not warnings: never problems


@dataclass(frozen=True)
class Finding:
    """One broken reference: where (the path of the template, the line inside it) and what."""

    # unknown-node, undeclared-result, given-at-completion, not-upstream, unknown-input,
    # unknown-field
    rule: str
    error: bool  # False: a warning (an error under strict), or a note (rule in NOTES)
    message: str
    node: str
    path: Path
    line: int  # of the reference inside the template, from 1


@dataclass(frozen=True)
class _Read:
    reference: Reference
    reader: str  # the node that evaluates it
    own: bool  # True for a condition: the reader's own results are there
    node: str  # where it is written
    path: Path


def _raw_reads(raw_nodes: Mapping[str, Any], nodes: Mapping[str, Node]) -> Iterator[_Read]:
    """Each reference of each parameter and condition, in the file's order."""
    for name in nodes:
        raw = raw_nodes.get(name)
        raw = raw if isinstance(raw, dict) else {}
        parameters = raw.get("parameters")
        for parameter, value in (parameters if isinstance(parameters, dict) else {}).items():
            text = scalar_text(value)
            path: Path = ("nodes", name, "parameters", parameter)
            for found in references(text, template=True) if text and "{" in text else ():
                yield _Read(found, name, False, name, path)
        connectors = raw.get("connectors")
        for index, connector in enumerate(connectors if isinstance(connectors, list) else ()):
            condition = connector.get("condition") if isinstance(connector, dict) else None
            if isinstance(condition, str) and condition.strip():
                path = ("nodes", name, "connectors", index, "condition")
                for found in references(condition, template=False):
                    yield _Read(found, name, True, name, path)


def _certain_before(
    graph: nx.DiGraph, start: str, nodes: Mapping[str, Node]
) -> dict[str, set[str]]:
    """For each node reachable from ``start``: the nodes certain to have run when it runs."""
    reachable = {start} | nx.descendants(graph, start)
    sub = graph.subgraph(reachable)
    certain: dict[str, set[str]] = {}
    for name in nx.topological_sort(sub):
        before = [certain[p] for p in sub.predecessors(name) if p in certain]
        node = nodes.get(name)
        waits_for_all = node is not None and _waits_for_all(node)
        if not before:
            certain[name] = {name}
        elif waits_for_all:
            certain[name] = set().union(*before) | {name}
        else:
            certain[name] = set.intersection(*before) | {name}
    return certain


def _waits_for_all(node: Node) -> bool:
    """A join whose type is All, written or by default: every incoming branch has run."""
    if node.handler.behaviour is not Behaviour.JOIN:
        return False
    written, declared = node.parameters.get(QUORUM_TYPE), node.handler.parameter(QUORUM_TYPE)
    kind = constant(written) if written is not None else declared.default if declared else None
    return kind == "All"


def _path_without(graph: nx.DiGraph, start: str, reader: str, node: str,
                  certain: Mapping[str, set[str]]) -> list[str]:  # fmt: skip
    """A path from the start to ``reader`` that ``node`` is not on: walked back, one step each."""
    path, current = [reader], reader
    while current != start:
        current = next(
            p for p in graph.predecessors(current) if p in certain and node not in certain[p]
        )
        path.append(current)
    return path[::-1]


@dataclass
class ReferenceChecks:
    """The tree a builder read, and what its references are judged against."""

    raw_nodes: Mapping[str, Any]
    nodes: Mapping[str, Node]
    graph: nx.DiGraph
    start: str
    routine: RoutineSignature | None
    fields: Sequence[FieldSpec]
    declares_fields: bool
    reads_nil: bool = False  # ``missing: nil``: an undeclared key reads as nil, as in Kinetic
    _ancestors: dict[str, set[str]] = field(default_factory=dict)

    def findings(self) -> list[Finding]:
        certain = _certain_before(self.graph, self.start, self.nodes) if self.start else {}
        found = []
        for read in _raw_reads(self.raw_nodes, self.nodes):
            finding = self._judge(read, certain)
            if finding is not None:
                found.append(finding)
        return found

    def _judge(self, read: _Read, certain: Mapping[str, set[str]]) -> Finding | None:
        ref = read.reference
        if ref.scope in ("inputs", "values"):
            return self._declared(read)
        spelled = f"{ref.scope}[{ref.name!r}]"
        if ref.name not in self.graph:
            message = f"{spelled} names no node of this tree" + did_you_mean(ref.name, self.graph)
            return self._finding(read, "unknown-node", True, message)
        target = self.nodes.get(ref.name)
        if ref.scope == "results" and ref.key is not None and target is not None:
            declared = target.handler.results
            if declared and ref.key not in declared:
                spelled += f"[{ref.key!r}]"
                what = "routine" if target.handler.behaviour is Behaviour.ROUTINE else "handler"
                message = (
                    f"{spelled}: {what} {target.handler_id!r} of node {ref.name!r} does not"
                    f" declare result {ref.key!r} (it declares: {', '.join(declared)})"
                )
                if target.defers:
                    message += ": given at completion, if the completion gives it"
                    return self._finding(read, "given-at-completion", False, message)
                message += did_you_mean(ref.key, declared)
                return self._finding(read, "undeclared-result", not self.reads_nil, message)
        return self._upstream(read, spelled, certain)

    def _upstream(
        self, read: _Read, spelled: str, certain: Mapping[str, set[str]]
    ) -> Finding | None:
        name, reader = read.reference.name, read.reader
        if read.own and name == reader:
            return None
        if reader not in certain:  # the reader never runs: said already (unreachable)
            return None
        if reader not in self._ancestors:  # each reader's once, however many references
            self._ancestors[reader] = nx.ancestors(self.graph, reader)
        if name not in self._ancestors[reader]:
            message = (
                f"{spelled} is read by {reader!r}, but no path leads from {name!r} to"
                f" {reader!r}: it has run only if another branch ran it first"
            )
            return self._finding(read, "not-upstream", False, message)
        if read.reference.scope == "results" and name not in certain[reader]:
            path = _path_without(self.graph, self.start, reader, name, certain)
            message = (
                f"{spelled} may be missing when {reader!r} runs: {name!r} is not on the"
                f" path {' -> '.join(path)}"
            )
            return self._finding(read, "not-upstream", False, message)
        return None

    def _declared(self, read: _Read) -> Finding | None:
        ref = read.reference
        if ref.scope == "inputs":
            if self.routine is None or self.routine.inputs is None:
                return None
            known = [i.name for i in self.routine.inputs]
            rule, what = "unknown-input", f"an input of routine {self.routine.definition_id!r}"
        else:
            if not self.declares_fields:
                return None
            known = [f.name for f in self.fields]
            rule, what = "unknown-field", "a field of this tree"
        if ref.name in known:
            return None
        message = (
            f"{ref.scope}[{ref.name!r}] is not {what} (declared: {', '.join(known) or 'none'})"
        )
        return self._finding(
            read, rule, not self.reads_nil, message + did_you_mean(ref.name, known)
        )

    @staticmethod
    def _finding(read: _Read, rule: str, error: bool, message: str) -> Finding:
        return Finding(rule, error, message, read.node, read.path, read.reference.line)


__all__ = ["NOTES", "Finding", "ReferenceChecks"]
