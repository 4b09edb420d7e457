"""The plugin module of a stand-ins package that ``treeflow import-kinetic --stand-ins`` writes.

This file is copied as it is into the generated package (``treeflow_kinetic_stand_ins``), next
to the ``handlers.json`` it reads; it is not used from here. Each entry of that file becomes a
handler that accepts the parameters the imported trees pass (none required, since Kinetic trees
leave parameters empty) and returns its configured results: the values under ``results`` in
``handlers.json``, overridden by the JSON file that ``TREEFLOW_STAND_IN_RESULTS`` names
(``{"handler_id": {"Result Name": "value"}}``), so that one dry run can try another answer
without editing the package. A stand-in does nothing else: it logs what it was given.

It imports only the plugin API (as any plugin does), and refuses a bad results file by name when
the engine collects its handlers, not in the middle of a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import HandlerContractError
from engine.handlers.handler import Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl

HANDLERS_FILE = Path(__file__).resolve().with_name("handlers.json")
RESULTS_VARIABLE = "TREEFLOW_STAND_IN_RESULTS"
# How a stand-in's description starts: how the importer tells a stand-in from a real handler.
DESCRIPTION_PREFIX = "Stand-in for a Kinetic handler"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HandlerContractError(handler=str(path), reason=f"cannot read {what}: {exc}") from exc


def _overrides() -> dict[str, dict[str, str]]:
    """Per-handler result values from the file ``TREEFLOW_STAND_IN_RESULTS`` names, if any."""
    name = os.environ.get(RESULTS_VARIABLE)
    if not name:
        return {}
    data = _read_json(Path(name), f"the stand-in results file ({RESULTS_VARIABLE})")
    valid = isinstance(data, dict) and all(
        isinstance(results, dict) and all(isinstance(v, str) for v in results.values())
        for results in data.values()
    )
    if not valid:
        raise HandlerContractError(
            handler=name,
            reason='the stand-in results file is {"handler_id": {"Result": "text"}}',
        )
    return {str(k): {str(r): v for r, v in results.items()} for k, results in data.items()}


def _stand_in(definition_id: str, entry: Mapping[str, Any], results: dict[str, str]) -> Handler:
    def execute(context: HandlerContext) -> Mapping[str, str]:
        context.logger.info(
            "stand-in %s for node %r got %s", definition_id, context.node_name,
            dict(context.parameters),
        )  # fmt: skip
        return dict(results)

    used_by = ", ".join(entry.get("used_by", ()))
    return Handler(
        definition_id=definition_id,
        execute=execute,
        parameters=tuple(Parameter(str(name)) for name in entry.get("parameters", ())),
        results=tuple(results),
        deferrable=bool(entry.get("deferrable", False)),
        description=f"{DESCRIPTION_PREFIX}, returns configured results (used by "
        f"{used_by or 'the imported trees'}).",
    )


def stand_ins() -> list[Handler]:
    """The handlers ``handlers.json`` declares, with their configured results."""
    data = _read_json(HANDLERS_FILE, "the stand-ins' handlers.json")
    declared = data.get("handlers") if isinstance(data, dict) else None
    if not isinstance(declared, dict):
        raise HandlerContractError(handler=str(HANDLERS_FILE), reason='it has no "handlers" map')
    overrides = _overrides()
    handlers = []
    for definition_id, entry in sorted(declared.items()):
        results = {str(k): str(v) for k, v in dict(entry.get("results", {})).items()}
        results.update(overrides.get(definition_id, {}))
        handlers.append(_stand_in(definition_id, entry, results))
    return handlers


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return stand_ins()
