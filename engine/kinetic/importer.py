"""Convert a Kinetic Task tree or routine export (XML) into treeflow's YAML tree format.

The export is untrusted input, so it is parsed by the project's hardened lxml parser
(:func:`engine.results_xml.parse_xml`: no DTD, no entities, no network, a size cap); a DOCTYPE
or an undeclared entity is refused with its line and column. The conversion is a pure
XML-to-data step: it does not consult the handler registry, so an id treeflow does not know is
kept as written and the tree loader reports it when the result is validated.

Nothing is dropped silently. ERB that :mod:`engine.kinetic.erb` cannot translate is kept as written
and reported, per node, as a :class:`~engine.errors.Problem` in :attr:`KineticTree.kept` (the YAML
text repeats the report in its header comment); so are node messages, which treeflow trees do not
have. Only layout (``x``/``y``) and what a handler declares itself (``deferrable``, ``version``,
``visible``, ``configured``) are left out, since they change no behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from lxml import etree

from engine.errors import BadResults, KineticImportError, Problem
from engine.kinetic.erb import Untranslatable, translate_condition, translate_template
from engine.results_xml import parse_xml

MAX_EXPORT_BYTES = 16 * 1_048_576
CONNECTOR_TYPES = ("Complete", "Create", "Update")
ROUTINE_TYPES = ("Global Routine", "Local Routine")
# Kinetic's handler ids for the nodes treeflow has (or plans) under the same
# behaviour; today every one keeps its id. A Kinetic id not listed here is kept as written.
HANDLERS: dict[str, str] = {
    name: name
    for name in (
        "system_start_v1",
        "system_noop_v1",
        "system_join_v1",
        "system_junction_v1",
        "system_loop_head_v1",
        "system_loop_tail_v1",
        "system_wait_v1",
        "system_tree_return_v1",
        "utilities_echo_v1",
        "utilities_defer_v1",
        "utilities_create_trigger_v1",
    )
}
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY")


@dataclass(frozen=True)
class KineticTree:
    """A converted export: the tree as plain data, and everything kept as written."""

    definition: dict[str, Any]
    kept: tuple[Problem, ...]
    routine: bool = False
    file: str = "<export>"

    @property
    def name(self) -> str:
        return str(self.definition["name"])

    def yaml(self) -> str:
        """The tree as YAML text, headed by a comment listing what was kept as written."""
        lines = [f"# Converted from the Kinetic Task export {self.file}."]
        if self.kept:
            lines.append("# Kept as written (not translated); review before running:")
            lines.extend(f"#   {_one_line(str(problem))}" for problem in self.kept)
        body = yaml.dump(
            self.definition,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            width=1_000_000,  # a template stays on one line, as written
            indent=2,
        )
        return "\n".join(lines) + "\n" + str(body)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    """Lays YAML out as the files in ``trees/`` are: lists indented under their key, templates
    with quotes in double quotes, multi-line texts as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = None
    if "\n" in text and text == text.strip(" ") and "\r" not in text:
        style = "|"
    elif "'" in text:
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def _input(parameter: etree._Element) -> str | dict[str, Any]:
    """A routine input: its name, or a mapping when it is optional (``required="false"``)."""
    name = parameter.get("id") or ""
    if name and (parameter.get("required") or "").strip().lower() == "false":
        return {"name": name, "required": False}
    return name


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _field(element: etree._Element, name: str) -> str | None:
    """A value an export holds as an attribute or as a child element's text (both are seen)."""
    value = element.get(name)
    if value is None:
        child = element.find(name)
        value = None if child is None else (child.text or "")
    return None if value is None else value.strip()


class _Converter:
    """One pass over an export, gathering problems (refusals) and kept pieces (reports)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.kept: list[Problem] = []

    def problem(self, message: str, element: etree._Element, node: str | None = None) -> None:
        self.problems.append(Problem(self.file, message, node, element.sourceline))

    def keep(self, message: str, element: etree._Element, node: str) -> None:
        self.kept.append(Problem(self.file, message, node, element.sourceline))

    def convert(self, root: etree._Element, source: str | None, group: str | None) -> KineticTree:
        envelope = root if root.tag == "tree" else None
        task_tree = root.find("taskTree") if envelope is not None else root
        if task_tree is None or task_tree.tag != "taskTree":
            what = "has no <taskTree>" if envelope is not None else f"is <{root.tag}>"
            self.problem(f"the root element {what}; expected <tree> or <taskTree>", root)
            raise KineticImportError(file=self.file, problems=self.problems)
        kind = _field(envelope, "type") if envelope is not None else None
        routine = kind in ROUTINE_TYPES or task_tree.find("taskDefinition") is not None
        definition: dict[str, Any] = {}
        header = self._header(envelope, task_tree, source, group, routine, kind)
        definition.update(header)
        definition["missing"] = "nil"  # a missing key reads as Ruby's nil, as in Kinetic
        if routine:
            definition.update(self._routine(envelope, task_tree))
        request = task_tree.find("request")
        if request is None:
            self.problem("<taskTree> has no <request> holding the nodes", task_tree)
            raise KineticImportError(file=self.file, problems=self.problems)
        definition["nodes"] = self._nodes(request)
        if self.problems:
            raise KineticImportError(file=self.file, problems=self.problems)
        return KineticTree(definition, tuple(self.kept), routine, self.file)

    def _header(
        self,
        envelope: etree._Element | None,
        task_tree: etree._Element,
        source: str | None,
        group: str | None,
        routine: bool,
        kind: str | None,
    ) -> dict[str, Any]:
        name = _field(task_tree, "name")
        if not name:
            self.problem("the tree has no name", task_tree)
        global_routine = routine and kind != "Local Routine"
        header: dict[str, Any] = {}
        for key, given, tag in (("source", source, "sourceName"), ("group", group, "sourceGroup")):
            found = _field(envelope, tag) if envelope is not None else None
            value = given or found or ("-" if global_routine else None)
            if not value:
                element = envelope if envelope is not None else task_tree
                reason = f"the export names no {tag}; give it with --{key}"
                self.kept.append(Problem(self.file, reason, None, element.sourceline))
                value = "-"
            header[key] = value
        header["name"] = name or ""
        status = _field(envelope, "status") if envelope is not None else None
        if status and status != "Active":
            header["status"] = status
        notes = _field(task_tree, "notes")
        if notes:
            header["description"] = notes
        return header

    def _routine(
        self, envelope: etree._Element | None, task_tree: etree._Element
    ) -> dict[str, Any]:
        found = task_tree.find("taskDefinition")
        definition_id = _field(envelope, "definitionId") if envelope is not None else None
        inputs: list[str | dict[str, Any]] = []
        outputs: list[str] = []
        if found is not None:
            definition_id = found.get("id") or definition_id
            inputs = [_input(p) for p in found.iterfind("parameters/parameter")]
            outputs = [r.get("name") or "" for r in found.iterfind("results/result")]
        if not definition_id:
            where = found if found is not None else task_tree
            self.problem("a routine export names no definition id", where)
        if not outputs:  # older exports: the outputs are the return node's parameters
            for task in task_tree.iterfind("request/task"):
                if task.get("definition_id") == "system_tree_return_v1":
                    outputs += [p.get("id") or "" for p in task.iterfind("parameters/parameter")]
        data: dict[str, Any] = {"type": "routine", "definition_id": definition_id or ""}
        data["inputs"] = [item for item in inputs if item]
        data["outputs"] = list(dict.fromkeys(name for name in outputs if name))
        return data

    def _nodes(self, request: etree._Element) -> dict[str, Any]:
        tasks = [t for t in request if isinstance(t.tag, str) and t.tag == "task"]
        for other in request:
            if isinstance(other.tag, str) and other.tag != "task":
                self.problem(f"<request> holds <{other.tag}>; only <task> nodes", other)
        names: dict[str, str] = {}  # Kinetic node id -> our node name
        elements: dict[str, etree._Element] = {}
        for task in tasks:
            node_id, name = task.get("id"), (task.get("name") or "").strip()
            if not node_id or not name or not task.get("definition_id"):
                missing = [a for a in ("id", "name", "definition_id") if not task.get(a)]
                self.problem(f"a <task> without {', '.join(missing)}", task, name or None)
                continue
            if node_id in names:
                self.problem(f"node id {node_id!r} is used twice", task, name)
                continue
            if name in names.values():
                unique = f"{name} ({node_id})"
                message = f"a second node named {name!r} is renamed {unique!r}"
                self.keep(message + " (results are addressed by name: check look-ups)", task, name)
                name = unique
            names[node_id], elements[node_id] = name, task
        ordered = sorted(names, key=lambda i: i != "start")  # the start first, then as exported
        return {names[i]: self._node(elements[i], names[i], names) for i in ordered}

    def _node(self, task: etree._Element, name: str, names: dict[str, str]) -> dict[str, Any]:
        kinetic_id = task.get("definition_id") or ""
        node: dict[str, Any] = {"handler": HANDLERS.get(kinetic_id, kinetic_id)}
        if (_field(task, "defers") or "").lower() == "true":
            node["defers"] = True
        parameters: dict[str, str] = {}
        for parameter in task.iterfind("parameters/parameter"):
            parameter_id = parameter.get("id")
            if not parameter_id:
                self.problem("a <parameter> without an id", parameter, name)
                continue
            text, kept = translate_template(parameter.text or "")
            for piece in kept:
                message = f"parameter {parameter_id!r} keeps {piece.code!r}: {piece.reason}"
                self.keep(message, parameter, name)
            parameters[parameter_id] = text
        if parameters:
            node["parameters"] = parameters
        for message in task.iterfind("messages/message"):
            if (message.text or "").strip():
                what = f"the {message.get('type') or ''} message {message.text.strip()!r}"
                self.keep(f"{what} is not converted: nodes have no messages", message, name)
        connectors = [self._connector(d, name, names) for d in task.iterfind("dependents/task")]
        if connectors:
            node["connectors"] = [c for c in connectors if c is not None]
        return node

    def _connector(
        self, dependent: etree._Element, name: str, names: dict[str, str]
    ) -> dict[str, Any] | None:
        target = (dependent.text or "").strip()
        kind = dependent.get("type") or "Complete"
        if target not in names:
            self.problem(f"a connector to unknown node id {target!r}", dependent, name)
            return None
        if kind not in CONNECTOR_TYPES:
            choices = ", ".join(CONNECTOR_TYPES)
            self.problem(f"connector type {kind!r} is not one of {choices}", dependent, name)
            return None
        connector: dict[str, Any] = {"to": names[target]}
        if kind != "Complete":
            connector["type"] = kind
        label = (dependent.get("label") or "").strip()
        if label:
            connector["label"] = label
        value = dependent.get("value") or ""
        try:
            condition = translate_condition(value)
        except Untranslatable as exc:
            where = f"the connector to {names[target]!r}"
            self.keep(f"{where} keeps its condition {value!r}: {exc.reason}", dependent, name)
            condition = value
        if condition is not None:
            connector["condition"] = condition
        return connector


def _refuse(file: str, document: bytes, exc: BadResults) -> KineticImportError:
    """The parser's refusal as an import error with a line and column, even for a DOCTYPE."""
    line, column, reason = exc.line, exc.column, exc.reason
    found = _DOCTYPE.search(document)
    if line is None and found is not None:  # refused before parsing: locate it ourselves
        line = document.count(b"\n", 0, found.start()) + 1
        column = found.start() - (document.rfind(b"\n", 0, found.start()) + 1) + 1
    where = f"line {line}, column {column}: " if line is not None else ""
    return KineticImportError(file=file, problems=[Problem(file, where + reason, None, line)])


def convert_kinetic(
    document: str | bytes,
    *,
    file: str = "<export>",
    source: str | None = None,
    group: str | None = None,
) -> KineticTree:
    """Convert one Kinetic export into a tree definition (plain data) and a report.

    ``source`` and ``group`` override the export's (a bare ``<taskTree>`` names neither).
    Raises :class:`KineticImportError` for XML that is malformed or hostile (with line and
    column) and for an export whose structure cannot be converted (every problem, with lines).
    """
    try:
        root = parse_xml(document, max_bytes=MAX_EXPORT_BYTES, what="Kinetic export")
    except BadResults as exc:
        data = document.encode("utf-8", "replace") if isinstance(document, str) else document
        raise _refuse(file, data, exc) from None
    return _Converter(file).convert(root, source, group)


__all__ = ["HANDLERS", "MAX_EXPORT_BYTES", "KineticTree", "convert_kinetic"]
