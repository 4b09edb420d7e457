"""The compiled form of a tree: frozen nodes and connectors built once, at load.

A :class:`Tree` is a definition, never a run: the runner reads it and writes rows. Templates and
conditions inside it are already compiled, the graph is a ``networkx.DiGraph`` for validation
and drawing, and the lookups the runner needs on every step (a node's connectors by type, a
join's incoming nodes, the junctions a node's progress may release, each junction's region,
each loop's head, tail and body) are precomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.errors import Problem
from engine.handlers.handler import Handler
from engine.records import TreeKey
from engine.statuses import ConnectorType
from engine.tree.expressions import Condition, Template
from engine.tree.fields import FieldSpec
from engine.tree.junctions import JunctionRegion
from engine.tree.retry import RetryPolicy
from engine.tree.routines import RoutineSignature

TREE_STATUSES = ("Active", "Inactive", "Paused")


@dataclass(frozen=True)
class Connector:
    """A directed edge; ``condition`` is None when the connector always fires."""

    source: str
    target: str
    type: ConnectorType
    label: str | None = None
    condition: Condition | None = None


@dataclass(frozen=True)
class LoopPair:
    """One loop (``engine.tree.loop_pairs``): its head, the tail the head connects to directly, and
    the nodes between, which run once per iteration."""

    head: str
    tail: str
    body: frozenset[str]


@dataclass(frozen=True)
class Node:
    name: str
    handler: Handler
    parameters: Mapping[str, Template]
    defers: bool = False
    connectors: tuple[Connector, ...] = ()
    # Precomputed at build so the runner never filters connectors per step.
    complete_connectors: tuple[Connector, ...] = ()
    create_connectors: tuple[Connector, ...] = ()
    update_connectors: tuple[Connector, ...] = ()
    incoming: tuple[str, ...] = ()  # names of nodes with a connector into this one
    junctions: tuple[str, ...] = ()  # junctions whose region holds this node: re-check on a move
    line: int | None = None
    retry: RetryPolicy | None = None  # its own, or the tree's default (engine.tree.retry)

    @property
    def handler_id(self) -> str:
        return self.handler.definition_id


@dataclass(frozen=True)
class Tree:
    """A validated, compiled tree definition (one version of it)."""

    key: TreeKey
    nodes: Mapping[str, Node]
    start: str
    graph: nx.DiGraph
    definition: Mapping[str, Any]  # the plain data it was built from; stored with the version
    digest: str  # sha256 of the canonical definition: a changed digest is a new version
    status: str = "Active"
    file: str = "<string>"
    description: str = ""
    selection: str = (
        ""  # the stored label of the workers that process its runs (engine.tree.selection)
    )
    extra: Mapping[str, Any] = field(default_factory=dict)
    junctions: Mapping[str, JunctionRegion] = field(default_factory=dict)
    routine: RoutineSignature | None = None  # set when the tree is a routine
    loops: Mapping[str, LoopPair] = field(default_factory=dict)  # by head
    loop_tails: Mapping[str, LoopPair] = field(default_factory=dict)  # by tail
    loop_depths: Mapping[str, int] = field(default_factory=dict)  # loops around a node, if any
    process: str = ""  # its name to the instance API (engine.tree.fields)
    fields: tuple[FieldSpec, ...] = ()  # the fields its instances have, in declared order
    # What Kinetic Task accepts and treeflow loads, but reports (engine.tree.leniency).
    warnings: tuple[Problem, ...] = ()
    # Results read that only a completion of a deferring node gives (engine.tree.reference_checks).
    notes: tuple[Problem, ...] = ()

    @property
    def active(self) -> bool:
        return self.status == "Active"


__all__ = ["TREE_STATUSES", "Connector", "LoopPair", "Node", "Tree"]
