"""Build a validated :class:`~engine.tree.model.Tree` from YAML text, a file, or plain data.

Validation never stops at the first problem: it walks the whole definition and raises one
:class:`~engine.errors.TreeError` listing every problem with its file, node and line, so a user
fixes a tree in one pass. What it checks is the README's list (Trees): exactly one start, known
handlers, connectors to known nodes, parameters declared by the handler and required ones present,
templates and conditions that compile, reachability from the start (a warning, as are the other
checks Kinetic does not make: ``engine.tree.leniency``; ``strict`` makes them problems), no
cycles (a loop is a head/tail pair, not a cycle: ``engine.tree.loop_pairs``), ``defers`` only
on deferrable handlers, join
settings, junctions with incoming connectors, loop heads paired with their tails, and the instance
API's declarations: the ``process`` name and the ``fields`` (``engine.tree.fields``); the checks
only the whole graph can make are ``engine.tree.graph_checks``'s, and what the templates and
conditions read is judged by ``engine.tree.reference_checks`` once the rest is valid. Each
junction's region and each loop's body are computed here, once. A routine's header and its
callers' parameters are checked against the routines known (``engine.tree.routines``); loading
files and directories together, and what is checked across them, is ``engine.tree.files``.

A problem is reported once, where it is: a node with an unknown handler still keeps its
connectors in the graph, so the nodes after it are not also reported as unreachable, and a
parameter that does not compile is not also reported as missing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import networkx as nx

from engine.errors import BadSelection, ExpressionError, Problem, TreeError
from engine.handlers.builtin import RETURN_HANDLER
from engine.handlers.handler import Behaviour, Handler
from engine.handlers.registry import HandlerRegistry
from engine.records import TreeKey
from engine.statuses import ConnectorType
from engine.tree import leniency
from engine.tree.control import constant
from engine.tree.expressions import MISSING_MODES, Condition, Expressions, Template
from engine.tree.fields import FieldSpec, tree_process
from engine.tree.graph_checks import GraphChecks
from engine.tree.junctions import junction_regions, members
from engine.tree.model import TREE_STATUSES, Connector, Node, Tree
from engine.tree.reference_checks import NOTES, ReferenceChecks
from engine.tree.retry import RetryPolicy, node_retry, tree_retry
from engine.tree.routines import (
    RoutineSignature,
    call_handler,
    return_handler,
    routine_header,
)
from engine.tree.selection import stored_label
from engine.tree.suggest import did_you_mean
from engine.tree.yaml_reader import ParsedYaml, Path, parse_yaml, scalar_text, yaml_kind

TREE_KEYS = frozenset(
    {"source", "group", "name", "status", "description", "nodes", "process", "fields", "selection"}
    | {"type", "definition_id", "inputs", "outputs", "retry"}
    | {"missing"}  # how a missing key reads: engine.tree.expressions.MISSING_MODES
    | {"deferral_token_auth"}  # callbacks may complete its deferrals by token alone (README)
)
NODE_KEYS = frozenset({"handler", "defers", "parameters", "connectors", "description", "retry"})
CONNECTOR_KEYS = frozenset({"to", "type", "label", "condition"})
Compiled = TypeVar("Compiled", Template, Condition)


def definition_digest(definition: Mapping[str, Any]) -> str:
    """A stable fingerprint of a definition: equal content, equal digest, whatever the layout."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Builder:
    """One pass over a definition, gathering problems as it builds nodes and the graph."""

    def __init__(
        self,
        parsed: ParsedYaml,
        *,
        file: str,
        registry: HandlerRegistry,
        expressions: Expressions,
        routines: Mapping[str, RoutineSignature],
        strict: bool = False,
        check_references: bool = True,
    ) -> None:
        self.parsed = parsed
        self.check_references = check_references  # off for a stored version rebuilt
        self.file = file
        self.registry = registry
        self.expressions = expressions
        self.routines = routines
        self.routine: RoutineSignature | None = None
        self.problems: list[Problem] = list(parsed.problems)
        self.warnings: list[Problem] = []
        self.notes: list[Problem] = []  # never problems, even strict (engine.tree.reference_checks)
        self.strict = strict  # warnings are problems
        self.graph = nx.DiGraph()  # every node name, and an edge for every connector 'to' one
        self.edge_paths: dict[tuple[str, str], Path] = {}  # the first connector of each edge
        self.opaque: set[str] = set()  # nodes whose connectors could not be read
        self.retry: RetryPolicy | None = None  # the tree's default (engine.tree.retry)

    def problem(self, message: str, *path: str | int, node: str | None = None) -> None:
        self.problems.append(self._at(message, path, node))

    def warn(self, message: str, *path: str | int, node: str | None = None) -> None:
        """What Kinetic Task accepts (``engine.tree.leniency``): a warning, a problem if strict."""
        (self.problems if self.strict else self.warnings).append(self._at(message, path, node))

    def _at(self, message: str, path: tuple[str | int, ...], node: str | None) -> Problem:
        line = None
        for end in range(len(path), -1, -1):  # the nearest enclosing path with a known line
            line = self.parsed.line(*path[:end])
            if line is not None:
                break
        return Problem(file=self.file, message=message, node=node, line=line)

    def build(self) -> Tree:
        data = self.parsed.data
        if not isinstance(data, dict):
            if data is not None or not self.problems:  # None after a YAML error: said already
                self.problem(f"a tree is a mapping, not {yaml_kind(data)}")
            raise TreeError(problems=self.problems)
        self._unknown_keys(data, TREE_KEYS)
        key = TreeKey(*(self._text(data, field) for field in ("source", "group", "name")))
        status = data.get("status", "Active")
        if status not in TREE_STATUSES:
            self.problem(f"status {status!r} is not one of {', '.join(TREE_STATUSES)}", "status")
        self._missing(data.get("missing", "error"))
        if not isinstance(data.get("deferral_token_auth", False), bool):
            self.problem("deferral_token_auth must be true or false", "deferral_token_auth")
        selection = ""
        try:
            selection = stored_label(data.get("selection"))
        except BadSelection as exc:
            self.problem(str(exc), "selection")
        self.routine = routine_header(data, self.problem, self.registry.ids)
        if self.routine is not None:  # a routine may call itself
            self.routines = {**self.routines, self.routine.definition_id: self.routine}
        process, fields = tree_process(data, key.name, self.routine is not None, self.problem)
        self.retry = tree_retry(data, self.problem)
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            what = "is empty" if isinstance(raw_nodes, dict) else f"is {yaml_kind(raw_nodes)}"
            self.problem(f"'nodes' must map node names to nodes; it {what}", "nodes")
            raise TreeError(problems=self.problems)
        self.graph.add_nodes_from(raw_nodes)
        built = {name: self._node(name, raw) for name, raw in raw_nodes.items()}
        nodes = {name: node for name, node in built.items() if node is not None}
        checks = GraphChecks(self.graph, self.edge_paths, self.opaque, self.problem, self.warn)
        start = checks.check_graph(nodes)
        loops = checks.check_loops(nodes)
        returns = any(node.handler.behaviour is Behaviour.RETURN for node in nodes.values())
        if self.routine is not None and not returns and nodes:
            self.warn(leniency.NO_RETURN, "nodes")
        if self.check_references and not self.problems:  # a graph known whole and acyclic
            self._check_references(data, nodes, start, fields)
        if self.problems:
            raise TreeError(problems=self.problems)
        junctions = [n for n, node in nodes.items() if node.handler.behaviour is Behaviour.JUNCTION]
        regions = junction_regions(self.graph, start, junctions)
        member_of, before = members(regions), self.graph.predecessors
        return Tree(
            key=key,
            nodes={
                name: replace(node, incoming=tuple(before(name)), junctions=member_of.get(name, ()))
                for name, node in nodes.items()
            },
            start=start,
            graph=self.graph,
            definition=data,
            digest=definition_digest(data),
            status=str(status),
            file=self.file,
            description=str(data.get("description", "")),
            selection=selection,
            junctions=regions,
            routine=self.routine,
            loops=loops,
            loop_tails={pair.tail: pair for pair in loops.values()},
            loop_depths=dict(Counter(node for pair in loops.values() for node in pair.body)),
            process=process,
            fields=fields,
            warnings=tuple(sorted(self.warnings, key=lambda w: w.line or 0)),  # in file order
            notes=tuple(self.notes),
        )

    def _check_references(
        self,
        data: dict[str, Any],
        nodes: dict[str, Node],
        start: str,
        fields: tuple[FieldSpec, ...],
    ) -> None:
        """What templates and conditions read, judged (``engine.tree.reference_checks``)."""
        declares_fields = self.routine is None and "fields" in data
        reads_nil = data.get("missing") == "nil"
        checks = ReferenceChecks(
            data["nodes"], nodes, self.graph, start, self.routine, fields, declares_fields,
            reads_nil,
        )  # fmt: skip
        for finding in checks.findings():
            start_line = self.parsed.literal_lines.get(finding.path)
            line = self.parsed.line(*finding.path)
            if start_line is not None:  # a literal block (key: |): the reference's own line
                line = start_line + finding.line - 1
            problem = Problem(
                file=self.file, message=finding.message, node=finding.node, line=line,
                rule=finding.rule,
            )  # fmt: skip
            if finding.rule in NOTES:
                self.notes.append(problem)
            elif finding.error or self.strict:
                self.problems.append(problem)
            else:
                self.warnings.append(problem)

    def _text(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{key!r} is required and must be a non-empty text", key)
            return ""
        return value

    def _unknown_keys(self, raw: dict[str, Any], known: frozenset[str], *path: str | int) -> None:
        node = str(path[1]) if len(path) > 1 else None
        for key in raw:
            if key not in known:
                message = f"unknown key {key!r}; known keys: {', '.join(sorted(known))}"
                self.problem(message, *path, key, node=node)

    def _node(self, name: str, raw: Any) -> Node | None:
        path = ("nodes", name)
        if not isinstance(raw, dict):
            message = f"a node is a mapping with a 'handler', not {yaml_kind(raw)}"
            self.problem(message, *path, node=name)
            self.opaque.add(name)
            return None
        self._unknown_keys(raw, NODE_KEYS, *path)
        handler = self._handler(name, raw.get("handler"), raw.get("parameters"))
        kind = {Behaviour.WAIT: "wait node", Behaviour.ROUTINE: "routine call"}.get(
            handler.behaviour if handler is not None else Behaviour.PLAIN
        )
        defers = raw.get("defers", kind is not None)  # its timer or its routine's return ends it
        if kind is not None and defers is not True:
            self.problem(f"a {kind} always defers, not 'defers: {defers!r}'", *path, node=name)
        elif not isinstance(defers, bool):
            message = f"'defers' must be true or false, not {defers!r}"
            self.problem(message, *path, "defers", node=name)
            defers = None  # unknown: Create and Update connectors are not judged by it
        elif defers and handler is not None and not handler.deferrable:
            message = f"'defers: true' but handler {handler.definition_id!r} is not deferrable"
            self.problem(message, *path, "defers", node=name)
        parameters = self._parameters(name, raw.get("parameters"), handler)
        connectors = self._connectors(name, raw.get("connectors"), defers)
        if handler is None:
            return None
        self.graph.add_node(name, handler=handler.definition_id, defers=defers is True)
        by_type = {kind: tuple(c for c in connectors if c.type is kind) for kind in ConnectorType}
        return Node(
            name=name,
            handler=handler,
            parameters=parameters,
            defers=defers is True,
            connectors=connectors,
            complete_connectors=by_type[ConnectorType.COMPLETE],
            create_connectors=by_type[ConnectorType.CREATE],
            update_connectors=by_type[ConnectorType.UPDATE],
            line=self.parsed.line(*path),
            retry=node_retry(name, raw, handler, self.retry, self.problem),
        )

    def _handler(self, node: str, handler_id: Any, parameters: Any) -> Handler | None:
        """The node's handler; a routine's id gives a call, a return node this routine's return."""
        handler = self.registry.get(handler_id) if isinstance(handler_id, str) else None
        called = self.routines.get(handler_id) if isinstance(handler_id, str) else None
        given = parameters if isinstance(parameters, dict) else ()
        if handler is not None and handler.behaviour is Behaviour.RETURN:
            if self.routine is not None:
                return return_handler(self.routine, given)
            if self.parsed.data.get("type", "tree") == "tree":
                self.warn(leniency.RETURN_IN_TREE, "nodes", node, "handler", node=node)
            return return_handler(RoutineSignature(RETURN_HANDLER, None, None), given)
        elif handler is None and called is not None:
            return call_handler(called, given)
        elif handler is None:
            what = f"unknown handler {handler_id!r}" if handler_id else "'handler' is missing"
            message = f"{what}; known handlers: {', '.join(self.registry.ids)}"
            if self.routines:
                message += f"; known routines: {', '.join(sorted(self.routines))}"
            if (
                isinstance(handler_id, str) and handler_id
            ):  # last: the lists above stay as they were
                message += did_you_mean(handler_id, [*self.registry.ids, *self.routines])
            self.problem(message, "nodes", node, "handler", node=node)
        return handler

    def _parameters(self, node: str, raw: Any, handler: Handler | None) -> dict[str, Template]:
        path = ("nodes", node, "parameters")
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            message = f"'parameters' must be a mapping of names to templates, not {yaml_kind(raw)}"
            self.problem(message, *path, node=node)
            return {}
        compiled: dict[str, Template] = {}
        for name, value in raw.items():
            text = scalar_text(value)
            if text is None:
                message = f"parameter {name!r} must be a template (a text), not {yaml_kind(value)}"
                self.problem(message, *path, name, node=node)
            elif handler is not None and handler.parameter(name) is None:
                if handler.behaviour is Behaviour.ROUTINE:  # Kinetic passes it; it is dropped
                    inputs = (p.name for p in handler.parameters)
                    message = leniency.undeclared_input(name, handler.definition_id, inputs)
                    self.warn(message, *path, name, node=node)
                    continue
                declared = ", ".join(p.name for p in handler.parameters) or "none"
                message = f"parameter {name!r} is not declared by {handler.definition_id!r}"
                self.problem(f"{message} (declared: {declared})", *path, name, node=node)
            else:
                what = f"parameter {name!r}"
                template = self._compile(self.expressions.template, text, what, node, (*path, name))
                if template is not None:
                    compiled[name] = template
        if handler is None:
            return compiled
        for parameter in handler.parameters:
            if parameter.name in compiled:
                value = constant(compiled[parameter.name])
                if parameter.menu and value is not None and value not in parameter.menu:
                    message = f"parameter {parameter.name!r} is {value!r}; it must be one of "
                    menu = ", ".join(parameter.menu)
                    self.problem(message + menu, *path, parameter.name, node=node)
            elif parameter.name in raw:
                continue  # given, but wrong: reported above
            elif parameter.default is not None:
                compiled[parameter.name] = self.expressions.template(parameter.default)
            elif parameter.required:
                message = f"required parameter {parameter.name!r} of {handler.definition_id!r}"
                self.problem(f"{message} is missing", *path, node=node)
        return compiled

    def _missing(self, missing: Any) -> None:
        """``missing: nil`` (imported Kinetic trees): a missing key reads as Ruby's nil in the
        tree's templates and conditions (``engine.tree.expressions``); ``error``, the default,
        keeps it an error."""
        if isinstance(missing, str) and missing in MISSING_MODES:
            self.expressions = self.expressions.reading_missing_as(missing)
        else:
            modes = ", ".join(MISSING_MODES)
            self.problem(f"missing {missing!r} is not one of {modes}", "missing")

    def _connectors(self, node: str, raw: Any, defers: bool | None) -> tuple[Connector, ...]:
        path = ("nodes", node, "connectors")
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem(f"'connectors' must be a list, not {yaml_kind(raw)}", *path, node=node)
            self.opaque.add(node)
            return ()
        built = [self._connector(node, item, (*path, i), defers) for i, item in enumerate(raw)]
        return tuple(connector for connector in built if connector is not None)

    def _connector(self, node: str, item: Any, path: Path, defers: bool | None) -> Connector | None:
        if isinstance(item, dict) and isinstance(item.get("to"), bool | int | float):
            written = scalar_text(item["to"])
            message = (
                f"'to' is {yaml_kind(item['to'])} ({written}), not a node name: "
                f'to name a node {written!r}, quote it: to: "{written}"'
            )
            self.problem(message, *path, "to", node=node)
            self.opaque.add(node)
            return None
        if not isinstance(item, dict) or not isinstance(item.get("to"), str):
            self.problem("a connector is a mapping with 'to: NODE NAME'", *path, node=node)
            self.opaque.add(node)
            return None
        self._unknown_keys(item, CONNECTOR_KEYS, *path)
        target, label, valid = item["to"], scalar_text(item.get("label")), True
        kind = next((t for t in ConnectorType if t.value == item.get("type", "Complete")), None)
        if kind is None:
            choices = ", ".join(t.value for t in ConnectorType)
            message = f"connector type {item.get('type')!r} is not one of {choices}"
            self.problem(message, *path, "type", node=node)
            valid = False
        elif kind is not ConnectorType.COMPLETE and defers is False:
            message = f"a {kind.value} connector to {target!r} never fires: the node does not defer"
            self.problem(message, *path, "type", node=node)
        if target in self.graph:
            self.graph.add_edge(node, target, type=kind and kind.value, label=label)
            self.edge_paths.setdefault((node, target), path)
        else:
            self.problem(f"connector to unknown node {target!r}", *path, "to", node=node)
            valid = False
        condition: Condition | None = None
        if "condition" in item:
            text = scalar_text(item["condition"])
            if text is None:
                message = f"a condition is an expression, not {yaml_kind(item['condition'])}"
                self.problem(message, *path, "condition", node=node)
            else:
                compile_ = self.expressions.condition
                condition = self._compile(compile_, text, "condition", node, (*path, "condition"))
            valid = valid and condition is not None
        if not valid or kind is None:
            return None
        return Connector(source=node, target=target, type=kind, label=label, condition=condition)

    def _compile(
        self, compile_: Callable[[str], Compiled], source: str, what: str, node: str, path: Path
    ) -> Compiled | None:
        try:
            return compile_(source)
        except ExpressionError as exc:
            # The key's line; in a literal block (key: |) the very line of the template.
            start, line = self.parsed.literal_lines.get(path), self.parsed.line(*path)
            if start is not None and exc.line is not None:
                line = start + exc.line - 1
            message = f"{what} does not compile: {exc}"
            self.problems.append(Problem(file=self.file, message=message, node=node, line=line))
            return None


def build_tree(
    parsed: ParsedYaml,
    *,
    file: str,
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None = None,
    strict: bool = False,
) -> Tree:
    """Validate and compile parsed data into a Tree, or raise TreeError with every problem.

    ``routines`` are the routines callers may name, by definition id. What Kinetic Task accepts
    (``engine.tree.leniency``) is in the tree's ``warnings``; ``strict`` makes it problems.
    """
    return _build(parsed, file, registry, expressions, routines, strict)


def _build(
    parsed: ParsedYaml,
    file: str,
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None,
    strict: bool,
    check_references: bool = True,
) -> Tree:
    known = routines or {}
    return _Builder(
        parsed,
        file=file,
        registry=registry,
        expressions=expressions,
        routines=known,
        strict=strict,
        check_references=check_references,
    ).build()


def load_tree_text(
    text: str,
    *,
    file: str = "<string>",
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None = None,
    strict: bool = False,
) -> Tree:
    """Build from YAML text; ``file`` names it in problems, which carry the lines."""
    return _build(parse_yaml(text, file=file), file, registry, expressions, routines, strict)


def load_tree_data(
    data: Mapping[str, Any],
    *,
    file: str = "<dict>",
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None = None,
    strict: bool = False,
    check_references: bool = True,
) -> Tree:
    """Build from plain data (a dict, or a stored definition): no lines to point at.

    ``check_references`` False rebuilds a stored version as it was stored: it was valid when
    loaded, and a version stored before the reference checks existed must still run.
    """
    parsed = ParsedYaml(data=dict(data))
    return _build(parsed, file, registry, expressions, routines, strict, check_references)


__all__ = [
    "build_tree",
    "definition_digest",
    "load_tree_data",
    "load_tree_text",
]
