"""A JSON Schema for tree files, generated from the handlers (and routines) an engine knows.

Editors read it through yaml-language-server (``# yaml-language-server: $schema=...`` at the top
of a tree file) to complete handler ids, parameter names and menu values, and to flag an unknown
key before the tree is loaded. It states what the loader checks of a file's *shape*: the keys of
a tree, a node and a connector, handler ids as an enum, each handler's parameters (required ones
required, no others) and menus. What needs the whole graph (reachability, joins, loops, templates
that compile) stays the loader's: the schema is an editor's aid, ``treeflow validate`` the judge.

A parameter is a template, so a menu parameter takes one of its menu's values or a text with a
template in it (``{{ ... }}``), which the loader checks when the run renders it. A routine's
caller (a node whose handler is a routine's ``definition_id``) takes the routine's inputs as its
parameters, and a routine's return node its outputs, which only the routine's file declares:
those two take any parameters here.

The schema is draft-07, the draft yaml-language-server supports fully.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.handlers.builtin import RETURN_HANDLER
from engine.handlers.handler import Handler
from engine.handlers.registry import HandlerRegistry
from engine.statuses import ConnectorType
from engine.tree.expressions import MISSING_MODES
from engine.tree.model import TREE_STATUSES
from engine.tree.routines import RoutineSignature

DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_ID = "https://treeflow.invalid/tree.schema.json"  # names it; nothing is fetched from it
TEMPLATE_PATTERN = r"\{[{%]"  # a text with a Jinja2 expression or tag in it
_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}  # the loader reads it as text


def tree_schema(
    registry: HandlerRegistry, routines: Mapping[str, RoutineSignature] | None = None
) -> dict[str, Any]:
    """The JSON Schema of a tree file, for the handlers of ``registry`` and ``routines``."""
    routines = routines or {}
    handlers = [h for h in (registry.get(i) for i in registry.ids) if h is not None]
    ids = sorted({h.definition_id for h in handlers} | set(routines))
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "treeflow tree file",
        "description": "A treeflow tree or routine (treeflow schema writes this file).",
        "type": "object",
        "required": ["source", "group", "name", "nodes"],
        "additionalProperties": False,
        "properties": _tree_properties(),
        "definitions": {
            "node": _node(ids, handlers, routines),
            "connector": _connector(),
            "routineInput": _routine_input(),
            "retry": _retry(),
        },
    }


def _retry() -> dict[str, Any]:
    """A retry policy (engine.tree.retry): durations are seconds or a number with a unit."""
    duration = {"type": ["number", "string"], "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h)?\s*$"}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "attempts": {"type": "integer", "minimum": 1, "maximum": 100},
            "backoff": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"initial": duration, "factor": {"type": "number"}, "max": duration},
            },
            "jitter": {"type": ["number", "boolean"]},
            "on": {"type": "array", "items": {"type": "string"}},
            "timeout": duration,
        },
    }


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _tree_properties() -> dict[str, Any]:
    names = {"type": "array", "items": {"type": "string"}}
    return {
        "source": _text("The source application; with group and name, the tree's key."),
        "group": _text("The source group, such as 'KEG Catalog > Conference Registration'."),
        "name": _text("The tree's name: createStart names a tree by source, group and name."),
        "description": _text("What the tree does."),
        "status": {"enum": list(TREE_STATUSES), "description": "Only an active tree starts runs."},
        "process": _text("The process this tree serves (the Kianda-style API)."),
        "fields": {
            "type": "object",
            "description": "The process's fields: values['Field'] in templates.",
            "additionalProperties": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "label": {"type": "string"},
                    "default": _SCALAR,
                    "settable": {"type": "boolean"},
                    "description": {"type": "string"},
                },
            },
        },
        "selection": _text("The worker label whose workers run this tree."),
        "retry": {
            "$ref": "#/definitions/retry",
            "description": "The retry policy of every node whose handler runs (engine.tree.retry).",
        },
        "deferral_token_auth": {
            "type": "boolean",
            "description": "Let its deferrals be completed by their token alone, where the server"
            " allows it (--deferral-token-auth).",
        },
        "missing": {
            "enum": list(MISSING_MODES),
            "description": "How a missing key reads in templates: an error (the default) or nil.",
        },
        "type": {"enum": ["tree", "routine"], "description": "routine: callable by other trees."},
        "definition_id": {
            "type": "string",
            "pattern": r"^[a-z][a-z0-9_]*$",
            "description": "A routine's id, which callers use as their handler.",
        },
        "inputs": {"type": "array", "items": {"$ref": "#/definitions/routineInput"}},
        "outputs": {**names, "description": "A routine's outputs, its return node's parameters."},
        "nodes": {
            "type": "object",
            "description": "The nodes, keyed by name (results['Name'] in templates).",
            "minProperties": 1,
            "additionalProperties": {"$ref": "#/definitions/node"},
        },
    }


def _node(
    ids: list[str], handlers: Iterable[Handler], routines: Mapping[str, RoutineSignature]
) -> dict[str, Any]:
    by_handler = [_handler_rule(handler) for handler in handlers]
    return {
        "type": "object",
        "required": ["handler"],
        "additionalProperties": False,
        "properties": {
            "handler": {"enum": ids, "description": "A handler's definition id, or a routine's."},
            "defers": {"type": "boolean", "description": "Wait to be resumed (deferrable only)."},
            "parameters": {"type": ["object", "null"], "additionalProperties": _SCALAR},
            "connectors": {
                "type": ["array", "null"],
                "items": {"$ref": "#/definitions/connector"},
            },
            "description": {"type": "string"},
            "retry": {"$ref": "#/definitions/retry", "description": "Replaces the tree's retry."},
        },
        "allOf": by_handler + [_routine_rule(routine) for routine in routines.values()],
    }


def _handler_rule(handler: Handler) -> dict[str, Any]:
    """If the node's handler is ``handler``: its parameters, and whether it may defer."""
    if handler.definition_id == RETURN_HANDLER:
        then: dict[str, Any] = {}  # the routine's outputs, which only its own file declares
    else:
        then = {"properties": {"parameters": _parameters(handler)}}
    if not handler.deferrable:
        then.setdefault("properties", {})["defers"] = {"const": False}
    rule: dict[str, Any] = {"if": _is(handler.definition_id), "then": then}
    if handler.description:
        rule["description"] = f"{handler.definition_id}: {handler.description}"
    return rule


def _routine_rule(routine: RoutineSignature) -> dict[str, Any]:
    inputs = routine.inputs or ()
    parameters: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {i.name: {**_SCALAR, "description": i.description} for i in inputs},
    }
    required = [i.name for i in inputs if i.required and i.default is None]
    if required:
        parameters["required"] = required
    return {"if": _is(routine.definition_id), "then": {"properties": {"parameters": parameters}}}


def _is(definition_id: str) -> dict[str, Any]:
    return {"properties": {"handler": {"const": definition_id}}, "required": ["handler"]}


def _parameters(handler: Handler) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for parameter in handler.parameters:
        value: dict[str, Any] = dict(_SCALAR)
        if parameter.menu:
            template = {"type": "string", "pattern": TEMPLATE_PATTERN}
            value = {"anyOf": [{"enum": list(parameter.menu)}, template]}
        if parameter.description:
            value["description"] = parameter.description
        if parameter.default is not None:
            value["default"] = parameter.default
        properties[parameter.name] = value
    schema: dict[str, Any] = {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": properties,
    }
    required = [p.name for p in handler.parameters if p.required and p.default is None]
    if required:
        schema["required"] = required
    return schema


def _connector() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["to"],
        "additionalProperties": False,
        "properties": {
            "to": {"type": "string", "description": "The node it leads to (quote Yes/true)."},
            "type": {"enum": [t.value for t in ConnectorType], "default": "Complete"},
            "label": {"type": ["string", "number", "boolean", "null"]},
            "condition": {**_SCALAR, "description": "An expression; without one it fires."},
        },
    }


def _routine_input() -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string"},
            {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "required": {"type": "boolean"},
                    "default": {"type": ["string", "number"]},
                    "description": {"type": "string"},
                },
            },
        ]
    }


__all__ = ["SCHEMA_ID", "tree_schema"]
