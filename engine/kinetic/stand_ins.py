"""Stand-ins for the Kinetic handlers treeflow lacks: found in converted trees, written as a plugin.

A team migrating from Kinetic Task wants to load, validate and dry-run its trees before it has
written the handlers they call (the Kinetic Platform API, its discussions, the integrator, ...).
:func:`find_stand_ins` lists every handler id the converted trees use that neither the registry
nor a known routine provides, with the parameters the trees pass it (the union over every node
using it), the result names they read from it (``results['Node']['Name']`` in templates and
conditions, ``@results[...]`` in Ruby kept as written) and whether any node defers on it.

:func:`write_stand_ins` writes that as an installable plugin package (``pip install DIR``, or
:func:`load_stand_ins` for a host or test that passes plugins directly): a ``pyproject.toml``
with the ``treeflow.nodes`` entry point, the module :mod:`engine.kinetic.stand_in_plugin` and
its ``handlers.json``. Writing into an existing package merges: parameters and result names are
added, and result values someone configured are kept, so one package can be built by importing
a folder of exports one file at a time.

A call of a routine nobody provides (Kinetic ids of routines start with ``routine_``, with or
without a version) gets a stand-in *routine* instead, in :attr:`StandIns.routines`: a call is
not a handler, and ``engine.kinetic.stand_in_routines`` writes it as a routine file, so that a
tree can be dry-run before the routine is imported. Any other id that is not a valid handler id
(lower snake case ending in ``_v<N>``) cannot be stood in for; :attr:`StandIns.refused` says so.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.errors import KineticImportError, Problem
from engine.handlers.handler import DEFINITION_ID
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.stand_in_plugin import DESCRIPTION_PREFIX
from engine.kinetic.stand_in_routines import write_stand_in_routines
from engine.tree.routines import ROUTINE_ID

PACKAGE = "treeflow_kinetic_stand_ins"
DISTRIBUTION = "treeflow-kinetic-stand-ins"
HANDLERS_JSON = "handlers.json"
ROUTINE_PREFIX = "routine_"
_PLUGIN_SOURCE = Path(__file__).resolve().with_name("stand_in_plugin.py")
# results['Node']['Name'] (Jinja, either quote) and @results['Node']['Name'] (Ruby kept).
_RESULT_LOOKUP = re.compile(
    r"""results\s*\[\s*(['"])(?P<node>(?:(?!\1).)+)\1\s*\]\s*\[\s*(['"])(?P<name>(?:(?!\3).)+)\3"""
)


@dataclass
class StandIn:
    """One handler (or routine) to stand in for, as the trees use it."""

    definition_id: str
    parameters: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    deferrable: bool = False
    used_by: list[str] = field(default_factory=list)

    def add(self, items: list[str], names: Iterable[str]) -> None:
        items.extend(name for name in names if name not in items)


@dataclass
class StandIns:
    """The stand-ins a set of trees needs, and the ids that cannot have one (with why)."""

    handlers: dict[str, StandIn] = field(default_factory=dict)
    routines: dict[str, StandIn] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def results_read(definition: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per node name, the result names a tree's templates, conditions and kept Ruby read."""
    read: dict[str, list[str]] = {}
    for text in _texts(definition.get("nodes", {})):
        for match in _RESULT_LOOKUP.finditer(text):
            names = read.setdefault(match["node"], [])
            if match["name"] not in names:
                names.append(match["name"])
    return read


def provides(registry: HandlerRegistry, definition_id: str) -> bool:
    """Whether ``registry`` has a real handler for the id (a stand-in installed is not one)."""
    handler = registry.get(definition_id)
    return handler is not None and not handler.description.startswith(DESCRIPTION_PREFIX)


def missing_ids(
    definition: Mapping[str, Any], registry: HandlerRegistry, routines: Iterable[str]
) -> list[str]:
    """The handler ids a tree's nodes use that neither ``registry`` nor ``routines`` provide."""
    known = set(routines)
    found: list[str] = []
    for node in dict(definition.get("nodes", {})).values():
        handler = str(node.get("handler", "")) if isinstance(node, Mapping) else ""
        missing = handler and not provides(registry, handler) and handler not in known
        if missing and handler not in found:
            found.append(handler)
    return found


def find_stand_ins(
    trees: Iterable[tuple[str, Mapping[str, Any]]],
    registry: HandlerRegistry,
    routines: Iterable[str] = (),
) -> StandIns:
    """The stand-ins ``trees`` (``(label, definition)`` pairs, converted) need.

    ``routines`` are the routine ids known besides the trees' own (a routine among ``trees`` is
    known to all of them, as the loader makes it).
    """
    trees = list(trees)
    known = set(routines) | {
        str(d["definition_id"]) for _, d in trees if d.get("type") == "routine"
    }
    found = StandIns()
    for label, definition in trees:
        read = results_read(definition)
        for node_name, node in dict(definition.get("nodes", {})).items():
            handler = str(node.get("handler", ""))
            if not handler or provides(registry, handler) or handler in known:
                continue
            if handler.startswith(ROUTINE_PREFIX) and ROUTINE_ID.match(handler):
                stand_ins = found.routines
            elif DEFINITION_ID.match(handler):
                stand_ins = found.handlers
            else:
                found.refused[handler] = "not lower_snake_case ending in a version such as _v1"
                continue
            stand_in = stand_ins.setdefault(handler, StandIn(handler))
            stand_in.add(stand_in.parameters, dict(node.get("parameters") or {}))
            stand_in.add(stand_in.results, read.get(node_name, ()))
            stand_in.add(stand_in.used_by, [label])
            stand_in.deferrable = stand_in.deferrable or bool(node.get("defers"))
    return found


def _pyproject() -> str:
    return f"""\
# Written by `treeflow import-kinetic --stand-ins`: stand-ins for the Kinetic handlers the
# imported trees call and treeflow lacks. Install with `pip install .`; edit the results in
# {PACKAGE}/{HANDLERS_JSON}.
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{DISTRIBUTION}"
version = "0.1.0"
description = "Stand-ins for Kinetic Task handlers, for loading and dry-running imported trees"
requires-python = ">=3.11"

[project.entry-points."treeflow.nodes"]
kinetic_stand_ins = "{PACKAGE}"

[tool.setuptools]
packages = ["{PACKAGE}"]

[tool.setuptools.package-data]
{PACKAGE} = ["{HANDLERS_JSON}"]
"""


def _entry(stand_in: StandIn, before: Mapping[str, Any]) -> dict[str, Any]:
    """The ``handlers.json`` entry: merged with what was there, keeping configured values."""
    parameters = list(before.get("parameters", []))
    stand_in.add(parameters, stand_in.parameters)
    results = {str(k): str(v) for k, v in dict(before.get("results", {})).items()}
    for name in stand_in.results:
        results.setdefault(name, "")
    used_by = list(before.get("used_by", []))
    stand_in.add(used_by, stand_in.used_by)
    return {
        "parameters": parameters,
        "results": results,
        "deferrable": bool(before.get("deferrable")) or stand_in.deferrable,
        "used_by": used_by,
    }


def write_stand_ins(directory: Path, found: StandIns) -> Path:
    """Write (or merge into) the stand-ins package under ``directory``, and the stand-in
    routines under ``directory/routines``; return the package's handlers.json."""
    package = directory / PACKAGE
    handlers_file = package / HANDLERS_JSON
    before: dict[str, Any] = {}
    if handlers_file.exists():
        try:
            before = dict(json.loads(handlers_file.read_text(encoding="utf-8"))["handlers"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = f"cannot merge into {handlers_file}: {exc}"
            raise KineticImportError(
                file=str(handlers_file), problems=[Problem(str(handlers_file), reason)]
            ) from exc
    # A routine id stood in for as a handler by an older import is a stand-in routine now.
    merged = {k: v for k, v in before.items() if k not in found.routines}
    for definition_id, stand_in in found.handlers.items():
        merged[definition_id] = _entry(stand_in, before.get(definition_id, {}))
    package.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(_pyproject(), encoding="utf-8")
    source = _PLUGIN_SOURCE.read_text(encoding="utf-8")
    (package / "__init__.py").write_text(source, encoding="utf-8")
    document = {"generated_by": "treeflow import-kinetic --stand-ins", "handlers": merged}
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    handlers_file.write_text(text, encoding="utf-8")
    write_stand_in_routines(directory, found.routines)
    return handlers_file


def load_stand_ins(directory: Path) -> ModuleType:
    """Import a written stand-ins package without installing it, for ``Engine(plugins=[...])``.

    Each call loads it afresh under its own module name, so that two engines may use two
    packages (or one package before and after it was edited).
    """
    init = directory / PACKAGE / "__init__.py"
    name = f"_{PACKAGE}_{abs(hash(str(init.resolve())))}_{len(sys.modules)}"
    spec = importlib.util.spec_from_file_location(name, init)
    if spec is None or spec.loader is None:
        raise ImportError(f"no stand-ins package under {directory}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


__all__ = [
    "DISTRIBUTION",
    "PACKAGE",
    "StandIn",
    "StandIns",
    "find_stand_ins",
    "load_stand_ins",
    "missing_ids",
    "results_read",
    "write_stand_ins",
]
