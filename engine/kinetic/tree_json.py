"""Kinetic Platform 6 JSON workflow exports (``treeJson``), read into the XML export's shape.

Platform 6 keeps a workflow as JSON: ``treeJson``, which the Core API's workflow export writes
to ``workflows/{event}/{name}.json`` as is, and which the Task API v2 carries in a tree body
beside ``sourceName``, ``sourceGroup``, ``type``, ``status``, ``definitionId``, ``inputs`` and
``outputs``. Both shapes are read: the bare ``treeJson`` object (``name``, ``notes``, ``lastId``,
``nodes`` and ``connectors``), and a body holding it under ``treeJson`` (as an object, or as a
JSON text, as the API also returns it).

The JSON is turned into the ``<tree>`` / ``<taskTree>`` elements of an XML export, so that one
converter (``engine.kinetic.importer``) judges both formats alike: each node a ``<task>`` with
its ``definitionId``, ``defers`` and parameters (``{"id", "value"}``), its messages, and its
outgoing connectors as ``<dependents>``, taken from the flat ``connectors`` list (``from``,
``to``, ``type``, ``label``, ``value``) or, when a workflow has none, from each node's own
``dependents.task`` (``content`` is the target id). A bare ``treeJson`` names no source or
group, like a bare ``<taskTree>``: give them with ``--source`` / ``--group``.

The JSON is read by the project's strict reader (:func:`engine.json_input.parse_json`); what
is not a workflow (no ``nodes`` list, a node that is not an object) is refused by name. A JSON
export has no lines the converter can point at, so its problems name nodes, not lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from engine.errors import BadRequest, KineticImportError, Problem
from engine.json_input import parse_json

_BODY_FIELDS = {  # Task API v2 tree body -> the <tree> element's children
    "sourceName": "sourceName",
    "sourceGroup": "sourceGroup",
    "type": "type",
    "status": "status",
    "definitionId": "definitionId",
}


def is_json(document: bytes) -> bool:
    """Whether an export is JSON (an object) rather than XML: its first character is ``{``."""
    return document.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _child(
    parent: etree._Element, tag: str, text: Any = None, attributes: Mapping[str, Any] | None = None
) -> etree._Element:
    element = etree.SubElement(parent, tag, {k: _text(v) for k, v in (attributes or {}).items()})
    if text is not None:
        element.text = _text(text)
    return element


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file

    def refuse(self, message: str, node: str | None = None) -> KineticImportError:
        return KineticImportError(file=self.file, problems=[Problem(self.file, message, node)])

    def tree(self, data: Any) -> etree._Element:
        if not isinstance(data, dict):
            raise self.refuse("a Kinetic JSON export is an object (a workflow's treeJson)")
        body: Mapping[str, Any] = {}
        if "treeJson" in data:
            body, data = data, data["treeJson"]
            if isinstance(data, str):
                data = self.parse(data.encode("utf-8"), "treeJson")
            if not isinstance(data, dict):
                raise self.refuse("'treeJson' is not an object (a workflow's nodes, connectors)")
        if not isinstance(data.get("nodes"), list):
            keys = ", ".join(sorted(map(str, data))) or "none"
            raise self.refuse(
                f"this JSON is not a Kinetic workflow export: it has no 'nodes' list (its keys:"
                f" {keys})"
            )
        root = etree.Element("tree")
        for key, tag in _BODY_FIELDS.items():
            if body.get(key) not in (None, ""):
                _child(root, tag, body[key])
        task_tree = _child(root, "taskTree")
        _child(task_tree, "name", body.get("name") or data.get("name") or "")
        for key, tag in (("notes", "notes"), ("lastId", "lastID")):
            if data.get(key) not in (None, ""):
                _child(task_tree, tag, data[key])
        if body.get("definitionId"):
            self.definition(task_tree, body)
        request = _child(task_tree, "request")
        connectors = self.connectors(data)
        for index, node in enumerate(data["nodes"]):
            self.task(request, node, index, connectors)
        return root

    def parse(self, document: bytes, what: str) -> Any:
        try:
            return parse_json(document, field=what)
        except BadRequest as exc:
            raise self.refuse(f"the JSON is not well-formed: {exc}") from None

    def definition(self, task_tree: etree._Element, body: Mapping[str, Any]) -> None:
        """A routine's inputs and outputs, as the XML export's ``<taskDefinition>``."""
        attributes = {"id": body["definitionId"], "name": body.get("name")}
        found = _child(task_tree, "taskDefinition", None, attributes)
        parameters = _child(found, "parameters")
        for item in body.get("inputs") or ():
            if isinstance(item, dict) and item.get("name"):
                required = item.get("required", True)
                _child(parameters, "parameter", None, {"id": item["name"], "required": required})
        results = _child(found, "results")
        for item in body.get("outputs") or ():
            if isinstance(item, dict) and item.get("name"):
                _child(results, "result", None, {"name": item["name"]})

    def connectors(self, data: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]] | None:
        """The flat ``connectors`` list by source node id; None when the workflow has none."""
        raw = data.get("connectors")
        if not isinstance(raw, list) or not raw:
            return None
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        for item in raw:
            if not isinstance(item, dict) or not item.get("from"):
                raise self.refuse(f"a connector is an object with 'from' and 'to', not {item!r}")
            by_source.setdefault(_text(item["from"]), []).append(item)
        return by_source

    def task(
        self,
        request: etree._Element,
        node: Any,
        index: int,
        connectors: dict[str, list[Mapping[str, Any]]] | None,
    ) -> None:
        if not isinstance(node, dict):
            raise self.refuse(f"node {index} of 'nodes' is not an object")
        name = _text(node.get("name"))
        given = {"id": node.get("id"), "name": name, "definition_id": node.get("definitionId")}
        task = _child(request, "task", None, {k: v for k, v in given.items() if v})
        _child(task, "defers", node.get("defers", False))
        parameters = _child(task, "parameters")
        for parameter in node.get("parameters") or ():
            if not isinstance(parameter, dict):
                raise self.refuse("a parameter is an object with 'id' and 'value'", name or None)
            _child(parameters, "parameter", parameter.get("value"), {"id": parameter.get("id")})
        messages = _child(task, "messages")
        for message in node.get("messages") or ():
            if isinstance(message, dict):
                _child(messages, "message", message.get("value"), {"type": message.get("type")})
        dependents = _child(task, "dependents")
        outgoing: list[Mapping[str, Any]]
        if connectors is not None:
            outgoing = [
                {**c, "content": c.get("to")} for c in connectors.get(_text(node.get("id")), ())
            ]
        else:
            raw = node.get("dependents")
            listed = raw.get("task") if isinstance(raw, dict) else None
            outgoing = [d for d in listed or () if isinstance(d, dict)]
        for item in outgoing:
            attributes = {k: item.get(k) for k in ("type", "label", "value") if item.get(k)}
            _child(dependents, "task", item.get("content"), attributes)


def tree_json_element(document: bytes, *, file: str) -> etree._Element:
    """The ``<tree>`` element of a Platform 6 JSON workflow export; KineticImportError (by
    name) for JSON that is malformed or is not a workflow, or holds text XML cannot carry."""
    builder = _Builder(file)
    data = builder.parse(document, "Kinetic export")
    try:
        return builder.tree(data)
    except ValueError as exc:  # lxml: a control character XML 1.0 cannot hold
        if isinstance(exc, KineticImportError):
            raise
        raise builder.refuse(f"the workflow holds text an export cannot carry: {exc}") from None


__all__ = ["is_json", "tree_json_element"]
