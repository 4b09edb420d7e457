"""Build a validated :class:`~engine.tree.Tree` from YAML text, a file, or plain data.

Validation never stops at the first problem: it walks the whole definition and raises one
:class:`~engine.errors.TreeError` listing every problem with its file, node and line, so a
user fixes a tree in one pass. What it checks is SPEC section 2: exactly one start, known
handlers, connectors to known nodes, parameters declared by the handler and required ones
present, templates and conditions that compile, reachability from the start, no cycles,
``defers`` only on deferrable handlers, and join settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

import networkx as nx

from engine.errors import ExpressionError, Problem, TreeError
from engine.expressions import Condition, Expressions, Template
from engine.handlers import Behaviour, Handler, HandlerRegistry
from engine.statuses import ConnectorType
from engine.tree import TREE_STATUSES, Connector, Node, Tree, TreeKey
from engine.tree_yaml import ParsedYaml, parse_yaml

TREE_KEYS = frozenset({"source", "group", "name", "status", "description", "nodes"})
NODE_KEYS = frozenset({"handler", "defers", "parameters", "connectors", "description"})
CONNECTOR_KEYS = frozenset({"to", "type", "label", "condition"})
JOIN_TYPES = ("All", "Any", "Some")


def definition_digest(definition: Mapping[str, Any]) -> str:
    """A stable fingerprint of a definition: equal content, equal digest, whatever the layout."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Builder:
    """One pass over a definition, gathering problems as it builds nodes."""

    def __init__(
        self, parsed: ParsedYaml, *, file: str, registry: HandlerRegistry, expressions: Expressions
    ) -> None:
        self.parsed = parsed
        self.file = file
        self.registry = registry
        self.expressions = expressions
        self.problems: list[Problem] = list(parsed.problems)

    def problem(self, message: str, *path: str | int, node: str | None = None) -> None:
        line = None
        for end in range(len(path), -1, -1):  # the nearest enclosing path with a known line
            line = self.parsed.line(*path[:end])
            if line is not None:
                break
        self.problems.append(Problem(file=self.file, message=message, node=node, line=line))

    def build(self) -> Tree:
        data = self.parsed.data
        if self.problems and data is None:
            raise TreeError(problems=self.problems)
        if not isinstance(data, dict):
            self.problem(f"a tree is a mapping, not {type(data).__name__}")
            raise TreeError(problems=self.problems)
        unknown = sorted(set(data) - TREE_KEYS)
        if unknown:
            self.problem(f"unknown keys {unknown}; known keys are {sorted(TREE_KEYS)}")
        key = TreeKey(
            source_name=self._text(data, "source"),
            source_group=self._text(data, "group"),
            name=self._text(data, "name"),
        )
        status = data.get("status", "Active")
        if status not in TREE_STATUSES:
            self.problem(f"status {status!r} is not one of {list(TREE_STATUSES)}", "status")
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.problem("'nodes' must be a mapping of node names to nodes", "nodes")
            raise TreeError(problems=self.problems)
        drafts = {name: self._node(name, raw) for name, raw in raw_nodes.items()}
        nodes = {name: draft for name, draft in drafts.items() if draft is not None}
        graph = self._graph(nodes)
        start = self._check_graph(graph, nodes)
        if self.problems:
            raise TreeError(problems=self.problems)
        incoming = {name: tuple(graph.predecessors(name)) for name in nodes}
        final = {name: _with_incoming(node, incoming[name]) for name, node in nodes.items()}
        return Tree(
            key=key,
            nodes=final,
            start=start,
            graph=graph,
            definition=data,
            digest=definition_digest(data),
            status=str(status),
            file=self.file,
            description=str(data.get("description", "")),
        )

    def _text(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{key!r} is required and must be a non-empty string", key)
            return ""
        return value

    def _node(self, name: str, raw: Any) -> Node | None:
        path = ("nodes", name)
        if not isinstance(raw, dict):
            self.problem("a node is a mapping with at least 'handler'", *path, node=name)
            return None
        unknown = sorted(set(raw) - NODE_KEYS)
        if unknown:
            self.problem(f"unknown keys {unknown}; known keys are {sorted(NODE_KEYS)}", *path, node=name)
        handler_id = raw.get("handler")
        handler = self.registry.get(handler_id) if isinstance(handler_id, str) else None
        if handler is None:
            self.problem(
                f"unknown handler {handler_id!r}; known handlers: {', '.join(self.registry.ids)}",
                *path,
                "handler",
                node=name,
            )
        defers = raw.get("defers", False)
        if not isinstance(defers, bool):
            self.problem(f"'defers' must be true or false, not {defers!r}", *path, "defers", node=name)
            defers = False
        if defers and handler is not None and not handler.deferrable:
            self.problem(
                f"'defers: true' but handler {handler.definition_id!r} is not deferrable",
                *path,
                "defers",
                node=name,
            )
        parameters = self._parameters(name, raw.get("parameters", {}), handler)
        connectors = self._connectors(name, raw.get("connectors", []), defers)
        if handler is None:
            return None
        return Node(
            name=name,
            handler=handler,
            parameters=parameters,
            defers=defers,
            connectors=connectors,
            complete_connectors=_of_type(connectors, ConnectorType.COMPLETE),
            create_connectors=_of_type(connectors, ConnectorType.CREATE),
            update_connectors=_of_type(connectors, ConnectorType.UPDATE),
            line=self.parsed.line(*path),
        )

    def _parameters(self, node: str, raw: Any, handler: Handler | None) -> dict[str, Template]:
        path = ("nodes", node, "parameters")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problem("'parameters' must be a mapping of names to templates", *path, node=node)
            return {}
        compiled: dict[str, Template] = {}
        for name, value in raw.items():
            if isinstance(value, bool | int | float):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            if not isinstance(value, str):
                self.problem(
                    f"parameter {name!r} must be a string template, not {type(value).__name__}",
                    *path,
                    name,
                    node=node,
                )
                continue
            if handler is not None and handler.parameter(name) is None:
                declared = [p.name for p in handler.parameters]
                self.problem(
                    f"parameter {name!r} is not declared by handler {handler.definition_id!r} "
                    f"(declared: {declared})",
                    *path,
                    name,
                    node=node,
                )
                continue
            template = self._compile(self.expressions.template, value, node, *path, name)
            if template is not None:
                compiled[name] = template
        if handler is not None:
            for parameter in handler.parameters:
                if parameter.name in compiled:
                    self._check_menu(node, parameter.name, parameter.menu, compiled[parameter.name])
                elif parameter.default is not None:
                    compiled[parameter.name] = self.expressions.template(parameter.default)
                elif parameter.required:
                    self.problem(
                        f"required parameter {parameter.name!r} of {handler.definition_id!r} is missing",
                        *path,
                        node=node,
                    )
        if handler is not None and handler.behaviour is Behaviour.JOIN:
            self._check_join(node, compiled)
        return compiled

    def _check_menu(self, node: str, name: str, menu: tuple[str, ...], template: Template) -> None:
        if menu and not template.names and template.source not in menu:
            self.problem(
                f"parameter {name!r} is {template.source!r}; it must be one of {list(menu)}",
                "nodes",
                node,
                "parameters",
                name,
                node=node,
            )

    def _check_join(self, node: str, parameters: Mapping[str, Template]) -> None:
        kind = parameters.get("type")
        number = parameters.get("number")
        if kind is not None and kind.source == "Some":
            text = number.source if number is not None else ""
            if not text.isdigit() or int(text) < 1:
                self.problem(
                    f"a Some join needs 'number' as a whole number of at least 1, not {text!r}",
                    "nodes",
                    node,
                    "parameters",
                    node=node,
                )

    def _connectors(self, node: str, raw: Any, defers: bool) -> tuple[Connector, ...]:
        path = ("nodes", node, "connectors")
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem("'connectors' must be a list", *path, node=node)
            return ()
        connectors = []
        for index, item in enumerate(raw):
            here = (*path, index)
            if not isinstance(item, dict) or not isinstance(item.get("to"), str):
                self.problem("a connector is a mapping with 'to: NODE NAME'", *here, node=node)
                continue
            unknown = sorted(set(item) - CONNECTOR_KEYS)
            if unknown:
                self.problem(f"unknown connector keys {unknown}", *here, node=node)
            try:
                kind = ConnectorType(item.get("type", "Complete"))
            except ValueError:
                self.problem(
                    f"connector type {item.get('type')!r} is not one of "
                    f"{[t.value for t in ConnectorType]}",
                    *here,
                    "type",
                    node=node,
                )
                continue
            if kind is not ConnectorType.COMPLETE and not defers:
                self.problem(
                    f"a {kind.value} connector to {item['to']!r} never fires: "
                    "the node does not defer",
                    *here,
                    node=node,
                )
            condition: Condition | None = None
            text = item.get("condition")
            if text is not None:
                if not isinstance(text, str) or not text.strip():
                    self.problem("a condition must be a non-empty expression", *here, "condition", node=node)
                    continue
                condition = self._compile(self.expressions.condition, text, node, *here, "condition")
                if condition is None:
                    continue
            label = item.get("label")
            connectors.append(
                Connector(
                    source=node,
                    target=item["to"],
                    type=kind,
                    label=None if label is None else str(label),
                    condition=condition,
                )
            )
        return tuple(connectors)

    def _compile(self, compile: Any, source: str, node: str, *path: str | int) -> Any:
        try:
            return compile(source)
        except ExpressionError as exc:
            line = self.parsed.line(*path)
            if line is not None and exc.line is not None and exc.line > 1:
                line += exc.line - 1
            self.problems.append(Problem(file=self.file, message=str(exc), node=node, line=line))
            return None

    def _graph(self, nodes: Mapping[str, Node]) -> nx.DiGraph:
        graph = nx.DiGraph()
        for name, node in nodes.items():
            graph.add_node(name, handler=node.handler_id, defers=node.defers)
        for name, node in nodes.items():
            for index, connector in enumerate(node.connectors):
                if connector.target not in self.parsed.data["nodes"]:
                    self.problem(
                        f"connector to unknown node {connector.target!r}",
                        "nodes",
                        name,
                        "connectors",
                        index,
                        node=name,
                    )
                elif connector.target in nodes:
                    graph.add_edge(name, connector.target, type=connector.type.value, label=connector.label)
        return graph

    def _check_graph(self, graph: nx.DiGraph, nodes: Mapping[str, Node]) -> str:
        starts = [n for n, node in nodes.items() if node.handler.behaviour is Behaviour.START]
        if len(starts) != 1:
            self.problem(f"a tree needs exactly one system_start_v1 node, found {len(starts)}: {starts}")
            return starts[0] if starts else ""
        start = starts[0]
        for source in graph.predecessors(start):
            self.problem(f"connector into the start node {start!r}", "nodes", source, node=source)
        reachable = nx.descendants(graph, start) | {start}
        for name in nodes:
            if name not in reachable:
                self.problem("node is not reachable from the start node", "nodes", name, node=name)
        for cycle in nx.simple_cycles(graph):
            self.problem(f"connectors form a cycle: {' -> '.join([*cycle, cycle[0]])}", "nodes", cycle[0], node=cycle[0])
        return start


def _of_type(connectors: Iterable[Connector], kind: ConnectorType) -> tuple[Connector, ...]:
    return tuple(c for c in connectors if c.type is kind)


def _with_incoming(node: Node, incoming: tuple[str, ...]) -> Node:
    from dataclasses import replace

    return replace(node, incoming=incoming)


def build_tree(
    parsed: ParsedYaml, *, file: str, registry: HandlerRegistry, expressions: Expressions
) -> Tree:
    """Validate and compile parsed data into a Tree, or raise TreeError with every problem."""
    return _Builder(parsed, file=file, registry=registry, expressions=expressions).build()


def load_tree_text(
    text: str, *, file: str = "<string>", registry: HandlerRegistry, expressions: Expressions
) -> Tree:
    return build_tree(parse_yaml(text, file=file), file=file, registry=registry, expressions=expressions)


def load_tree_data(
    data: Mapping[str, Any], *, file: str = "<dict>", registry: HandlerRegistry, expressions: Expressions
) -> Tree:
    """Build from plain data (a dict, or a stored definition): no lines to point at."""
    return build_tree(ParsedYaml(data=dict(data)), file=file, registry=registry, expressions=expressions)


def tree_files(paths: Iterable[str | FsPath]) -> list[FsPath]:
    """Expand files and directories into the YAML files they hold, sorted."""
    files: list[FsPath] = []
    for path in map(FsPath, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def load_tree_files(
    paths: Iterable[str | FsPath], *, registry: HandlerRegistry, expressions: Expressions
) -> list[Tree]:
    """Load every tree under ``paths``; one TreeError lists the problems of all files."""
    trees: list[Tree] = []
    problems: list[Problem] = []
    seen: dict[TreeKey, str] = {}
    for file in tree_files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(file=str(file), message=f"cannot read the file: {exc}"))
            continue
        try:
            tree = load_tree_text(text, file=str(file), registry=registry, expressions=expressions)
        except TreeError as exc:
            problems.extend(exc.problems)
            continue
        if tree.key in seen:
            problems.append(
                Problem(file=str(file), message=f"tree {str(tree.key)!r} is also defined in {seen[tree.key]}")
            )
            continue
        seen[tree.key] = str(file)
        trees.append(tree)
    if problems:
        raise TreeError(problems=problems)
    return trees


__all__ = [
    "build_tree",
    "definition_digest",
    "load_tree_data",
    "load_tree_files",
    "load_tree_text",
    "tree_files",
]
