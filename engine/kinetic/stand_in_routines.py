"""Stand-in routines: tree files for the Kinetic routines converted trees call and nobody provides.

A call of a routine is not a handler: it starts a child run of the routine and completes when
that run reaches its return node (``engine.run.routines``). So a routine nobody has imported yet
is stood in for by a routine, not a handler: a tree file of ``type: routine`` with the id the
callers use (versioned, ``routine_finish_v1``, or not, ``routine_approval``: Kinetic accepts
both), as ``inputs`` the parameters the callers pass (none required, as Kinetic trees leave
parameters empty) and as ``outputs`` the result names the callers read. Its nodes are Start and
a return node (``system_tree_return_v1``) whose parameters are those outputs, empty at first:
edit them in the file (``Approval: Approved``) to steer a dry run down a branch.

The shape is the simplest that behaves as a routine does for its callers: the caller defers
while the child run goes (that is the call, whatever the routine does), then gets the outputs.
A stand-in returns at once; one that should wait for someone is edited to put a deferring node
before its return.

:func:`write_stand_in_routines` writes one file per id under ``DIR/routines`` beside the
stand-ins package; writing again merges (inputs and outputs added, configured output values
kept). The folder goes beside the trees (copied or linked into the trees folder, or named to
``treeflow validate`` with them); each file's description marks it as a stand-in, so that
:func:`stand_in_routine_ids` lets the next import list that routine as missing still.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from engine.errors import KineticImportError, Problem
from engine.handlers.builtin import RETURN_HANDLER
from engine.tree.files import tree_files
from engine.tree.graph_checks import START_HANDLER

if TYPE_CHECKING:
    from engine.kinetic.stand_ins import StandIn  # which writes these files, through this module

ROUTINES_FOLDER = "routines"
DESCRIPTION_PREFIX = "Stand-in for a Kinetic routine"
RETURN_NODE = "Return"
_HEADER = """\
# Written by `treeflow import-kinetic --stand-ins`: a stand-in for the Kinetic routine
# {definition_id}, which the imported trees call and no routine provides. It returns at once
# with the outputs its Return node's parameters give (edit them to steer a dry run). Put this
# folder beside the trees; a later import merges into this file and keeps those values.
"""


def routine_file(directory: Path, definition_id: str) -> Path:
    """Where the stand-in routine for ``definition_id`` is written under a stand-ins DIR."""
    return directory / ROUTINES_FOLDER / f"{definition_id}.yaml"


def _read(path: Path) -> Mapping[str, Any]:
    """A stand-in routine written before, to merge into (nothing if there is none)."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it is not a mapping")
        return data
    except (OSError, ValueError, yaml.YAMLError) as exc:
        reason = f"cannot merge into {path}: {exc}"
        raise KineticImportError(file=str(path), problems=[Problem(str(path), reason)]) from exc


def _names(items: Iterable[Any]) -> list[str]:
    return [str(i["name"] if isinstance(i, Mapping) else i) for i in items]


def _used_by(description: str) -> list[str]:
    _, found, rest = description.partition("(used by ")
    return [n for n in rest.rstrip(").").split(", ") if n] if found else []


def stand_in_routine(stand_in: StandIn, before: Mapping[str, Any]) -> dict[str, Any]:
    """The routine definition for ``stand_in``, merged with the one written ``before``."""
    inputs = _names(before.get("inputs") or ())
    stand_in.add(inputs, stand_in.parameters)
    outputs = _names(before.get("outputs") or ())
    stand_in.add(outputs, stand_in.results)
    nodes = before.get("nodes")
    node = nodes.get(RETURN_NODE) if isinstance(nodes, Mapping) else None
    configured = node.get("parameters") if isinstance(node, Mapping) else None
    values = {str(k): str(v) for k, v in dict(configured or {}).items()}
    used_by = _used_by(str(before.get("description", "")))
    stand_in.add(used_by, stand_in.used_by)
    return {
        "type": "routine",
        "definition_id": stand_in.definition_id,
        "source": "-",
        "group": "-",
        "name": f"Stand-in {stand_in.definition_id}",
        "description": f"{DESCRIPTION_PREFIX}, returns configured outputs (used by "
        f"{', '.join(used_by) or 'the imported trees'}).",
        "inputs": [{"name": name, "required": False} for name in inputs],
        "outputs": outputs,
        "nodes": {
            "Start": {"handler": START_HANDLER, "connectors": [{"to": RETURN_NODE}]},
            RETURN_NODE: {
                "handler": RETURN_HANDLER,
                "parameters": {name: values.get(name, "") for name in outputs},
            },
        },
    }


def write_stand_in_routines(directory: Path, routines: Mapping[str, StandIn]) -> list[Path]:
    """Write (or merge into) one routine file per stand-in under ``directory/routines``."""
    written: list[Path] = []
    for definition_id, stand_in in sorted(routines.items()):
        path = routine_file(directory, definition_id)
        definition = stand_in_routine(stand_in, _read(path))
        body = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_HEADER.format(definition_id=definition_id) + body, encoding="utf-8")
        written.append(path)
    return written


def stand_in_routine_ids(paths: Iterable[str | os.PathLike[str]]) -> set[str]:
    """The ids of the stand-in routines among the tree files under ``paths`` (not real ones)."""
    found: set[str] = set()
    for file in tree_files(paths):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        description = data.get("description") if isinstance(data, dict) else None
        if isinstance(description, str) and description.startswith(DESCRIPTION_PREFIX):
            found.add(str(data.get("definition_id", "")))
    return found


__all__ = [
    "DESCRIPTION_PREFIX",
    "ROUTINES_FOLDER",
    "routine_file",
    "stand_in_routine",
    "stand_in_routine_ids",
    "write_stand_in_routines",
]
