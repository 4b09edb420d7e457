"""Node and connector coverage of trees by the runs of their test cases (``--coverage``).

A node is covered when some case's run (or a routine run it called) has a task of it. A
connector ``A -> B`` is covered when a task of ``A`` was made before a task of ``B`` last changed,
in the same run at the same loop index or one nested inside the other's (a loop's body and its
head or tail). Task records do not say which connector fired, so this is read from the tasks: a
join's task is made when its first branch arrives and changes when it fires, so each branch
that arrived counts; a node reached by several connectors counts each whose source ran before.
A loop head's connector to its own tail pairs them and is never followed, so it is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.records import Run, Task, TreeKey
from engine.tree.model import Connector, Tree


@dataclass
class TreeCoverage:
    """What the cases reached of one tree: node names and connectors (source, target, type)."""

    tree: Tree
    nodes: set[str] = field(default_factory=set)
    connectors: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def all_connectors(self) -> list[Connector]:
        pairs = {(pair.head, pair.tail) for pair in self.tree.loops.values()}
        return [
            connector
            for node in self.tree.nodes.values()
            for connector in node.connectors
            if (connector.source, connector.target) not in pairs
        ]

    def missed_nodes(self) -> list[str]:
        return [name for name in self.tree.nodes if name not in self.nodes]

    def missed_connectors(self) -> list[Connector]:
        return [c for c in self.all_connectors if _key(c) not in self.connectors]


def _key(connector: Connector) -> tuple[str, str, str]:
    return (connector.source, connector.target, connector.type.value)


def _nested(one: str, other: str) -> bool:
    """Whether two loop indexes are equal or one lies inside the other (/0 inside /)."""
    a, b = one.rstrip("/") + "/", other.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _fired(connector: Connector, tasks: list[Task]) -> bool:
    sources = [t for t in tasks if t.name == connector.source]
    targets = [t for t in tasks if t.name == connector.target]
    return any(
        (s.id < t.id or s.created_at <= t.updated_at) and _nested(s.loop_index, t.loop_index)
        for s in sources
        for t in targets
    )


def add_runs(coverage: dict[TreeKey, TreeCoverage], runs: Iterable[tuple[Run, Tree]]) -> None:
    """Count what each run reached into the coverage of the tree it ran on."""
    for run, tree in runs:
        found = coverage.setdefault(tree.key, TreeCoverage(tree))
        tasks = list(run.tasks)
        found.nodes.update(task.name for task in tasks if task.name in tree.nodes)
        found.connectors.update(_key(c) for c in found.all_connectors if _fired(c, tasks))


__all__ = ["TreeCoverage", "add_runs"]
