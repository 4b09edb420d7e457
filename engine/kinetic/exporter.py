"""Write a treeflow tree as a Kinetic Task tree export (XML), the inverse of the importer.

What a team's Kinetic tooling reads back (the SDK's ``export_tree`` writes it to a file, a
``POST /trees`` of the file imports it again): the ``<tree>`` envelope with the source name,
group, type and status; the ``<taskTree>`` with the name and notes; a routine's
``<taskDefinition>`` with its inputs and outputs; one ``<task>`` per node with its handler id,
parameters and connectors (``<dependents>``).

Parameters and conditions are written as treeflow has them (Jinja-like templates and
expressions), not translated back to ERB: the importer keeps text without ERB as it is, so an
export imports again into the same definition, but Kinetic Task itself would read them as
literal text. Node ids are the start node's ``start`` and ``<handler>_<n>`` for the others, as
Kinetic numbers them; layout is a grid, since treeflow keeps none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

SCHEMA_VERSION = "1.0"


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
    body: bytes = etree.tostring(tree, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return body.decode("utf-8")


__all__ = ["export_kinetic"]
