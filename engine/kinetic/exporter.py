"""Write a treeflow tree as a Kinetic Task tree export (XML), the inverse of the importer.

What a team's Kinetic tooling reads back (the SDK's ``export_tree`` writes it to a file, a
``POST /trees`` of the file imports it again): the ``<tree>`` envelope with the source name,
group, type and status; the ``<taskTree>`` with the name and notes; a routine's
``<taskDefinition>`` with its inputs and outputs; one ``<task>`` per node with its handler id,
parameters and connectors (``<dependents>``).

Parameters and conditions are written as treeflow has them (its templates and expressions),
not translated back to ERB, so Kinetic Task itself would read them as literal text. So that an
export imports into treeflow again as exactly the tree it was, the export also carries the
definition in a comment (``treeflow-definition``, base64 JSON: Kinetic's parsers skip
comments); :func:`exported_definition` gives it back only when the rest of the document is
still exactly what the definition exports to, so an edited file is converted from its XML like
any Kinetic export. Node ids are the start node's ``start`` and ``<handler>_<n>`` for the
others, as Kinetic numbers them; layout is a grid, since treeflow keeps none.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from engine.errors import BadResults
from engine.results_xml import parse_xml

SCHEMA_VERSION = "1.0"
MARK = "treeflow-definition"
_MARK = re.compile(rb"<!-- " + MARK.encode() + rb" ([A-Za-z0-9+/=]+) -->")
MAX_EXPORT_BYTES = 16 * 1_048_576


def _text(parent: etree._Element, tag: str, text: str | None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, tag, **attributes)
    element.text = text or ""
    return element


def _input_element(parent: etree._Element, item: str | Mapping[str, Any]) -> None:
    if isinstance(item, str):
        name, required, default, description = item, True, "", ""
    else:
        name = str(item.get("name", ""))
        required = bool(item.get("required", True))
        default = str(item.get("default") or "")
        description = str(item.get("description") or "")
    _text(
        parent,
        "parameter",
        default,
        id=name,
        label=name,
        required=str(required).lower(),
        tooltip=description,
    )


def _node_ids(nodes: Mapping[str, Mapping[str, Any]], start: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, node in nodes.items():
        if name == start:
            ids[name] = "start"
            continue
        handler = str(node.get("handler", "node"))
        counts[handler] = counts.get(handler, 0) + 1
        ids[name] = f"{handler}_{counts[handler]}"
    return ids


def export_kinetic(definition: Mapping[str, Any], *, start: str, routine_type: str) -> str:
    """The Kinetic XML of a tree ``definition`` (the plain data it was loaded from), whose
    start node is ``start``; ``routine_type`` is ``Tree``, ``Global Routine`` or ``Local
    Routine``."""
    tree = _tree_element(definition, start=start, routine_type=routine_type)
    payload = {"definition": definition, "start": start, "type": routine_type}
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()  # the nodes in order
    tree.insert(0, etree.Comment(f" {MARK} {encoded} "))
    body: bytes = etree.tostring(tree, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return body.decode("utf-8")


def exported_definition(document: str | bytes) -> dict[str, Any] | None:
    """The definition a treeflow export carries, if ``document`` is one and unedited."""
    data = document.encode("utf-8") if isinstance(document, str) else document
    marks = _MARK.findall(data[:MAX_EXPORT_BYTES])
    if len(marks) != 1:
        return None
    try:
        root = parse_xml(data, max_bytes=MAX_EXPORT_BYTES, what="Kinetic export")
        payload = json.loads(base64.b64decode(marks[0], validate=True))
        definition, start, kind = payload["definition"], payload["start"], payload["type"]
        if not isinstance(definition, dict) or not isinstance(start, str):
            return None
        again = _tree_element(definition, start=start, routine_type=str(kind))
    except (BadResults, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        return None  # not one of ours after all: the importer converts (or refuses) it
    return definition if _canonical(root) == _canonical(again) else None


def _canonical(root: etree._Element) -> bytes:
    """The document without its layout: whitespace between elements left out."""
    for element in root.iter():
        element.tail = None
        if element.text is not None and not element.text.strip() and len(element):
            element.text = None
    return bytes(etree.tostring(root, method="c14n"))


def _tree_element(
    definition: Mapping[str, Any], *, start: str, routine_type: str
) -> etree._Element:
    nodes: Mapping[str, Mapping[str, Any]] = definition.get("nodes") or {}
    ids = _node_ids(nodes, start)
    tree = etree.Element("tree", schema_version=SCHEMA_VERSION)
    _text(tree, "sourceName", str(definition.get("source", "")))
    _text(tree, "sourceGroup", str(definition.get("group", "")))
    _text(tree, "type", routine_type)
    _text(tree, "status", str(definition.get("status", "Active")))
    if definition.get("definition_id"):
        _text(tree, "definitionId", str(definition["definition_id"]))
    task_tree = etree.SubElement(tree, "taskTree", schema_version=SCHEMA_VERSION, version="")
    _text(task_tree, "name", str(definition.get("name", "")))
    _text(task_tree, "author", "")
    _text(task_tree, "notes", str(definition.get("description", "")))
    _text(task_tree, "lastID", str(len(nodes)))
    if definition.get("type") == "routine":
        task_definition = etree.SubElement(
            task_tree,
            "taskDefinition",
            id=str(definition.get("definition_id", "")),
            name=str(definition.get("name", "")),
            schema_version=SCHEMA_VERSION,
            version="1",
        )
        parameters = etree.SubElement(task_definition, "parameters")
        for item in definition.get("inputs") or ():
            _input_element(parameters, item)
        etree.SubElement(task_definition, "handler", name="system_tree_call", version="1")
        results = etree.SubElement(task_definition, "results", format="xml")
        for output in definition.get("outputs") or ():
            etree.SubElement(results, "result", name=str(output))
    request = etree.SubElement(task_tree, "request")
    for index, (name, node) in enumerate(nodes.items()):
        task = etree.SubElement(
            request,
            "task",
            definition_id=str(node.get("handler", "")),
            id=ids[name],
            name=name,
            x=str(40 + 200 * (index % 5)),
            y=str(40 + 120 * (index // 5)),
        )
        _text(task, "version", "1")
        _text(task, "configured", "true")
        _text(task, "defers", str(bool(node.get("defers", False))).lower())
        _text(task, "deferrable", str(bool(node.get("defers", False))).lower())
        _text(task, "visible", "true")
        parameters = etree.SubElement(task, "parameters")
        for parameter, value in (node.get("parameters") or {}).items():
            _text(
                parameters,
                "parameter",
                str(value),
                id=str(parameter),
                label=str(parameter),
                menu="",
                required="false",
                tooltip="",
            )
        etree.SubElement(task, "messages")
        dependents = etree.SubElement(task, "dependents")
        for connector in node.get("connectors") or ():
            target = str(connector.get("to", ""))
            _text(
                dependents,
                "task",
                ids.get(target, target),
                label=str(connector.get("label") or ""),
                type=str(connector.get("type") or "Complete"),
                value=str(connector.get("condition") or ""),
            )
    return tree


__all__ = ["export_kinetic", "exported_definition"]
