"""treeflow's records in the Kinetic Task API v2's shapes, field for field as the document names
them (and as Kinetic Task answers, where its SDK reads more than the document says).

Single items are answered the way both readers expect: under the item's name, as the document
describes (``{"run": {...}}``), and with the same fields at the top level, as Kinetic Task
itself answers and its SDK reads them (``find_tree(...).content["sourceGroup"]``). Times are
ISO 8601 in UTC with milliseconds, as Kinetic writes them. ``include`` names the optional parts;
what treeflow does not have (audits, bindings, categories) is left out rather than faked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from engine.handlers.handler import Handler
from engine.records import Run, RunError, Task, Trigger
from engine.server import formats
from engine.tree.model import Tree

SYSTEM_NAME = "treeflow"


def timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def includes(value: str | None) -> frozenset[str]:
    """``include=details,tasks`` (comma-separated, also repeated) as a set of names."""
    if not value:
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def answer(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(formats.json_body(body), status_code=status, media_type="application/json")


def single(name: str, item: Mapping[str, Any]) -> Response:
    """One item, under its name and at the top level (see the module's docstring)."""
    return answer({**item, name: item})


def message(text: str) -> Response:
    return answer({"messageType": "success", "message": text})


def page(
    name: str,
    items: Iterable[Mapping[str, Any]],
    *,
    total: int,
    limit: int,
    offset: int,
    count: bool = True,
) -> Response:
    listed = list(items)
    body: dict[str, Any] = {name: listed, "limit": limit, "offset": offset}
    if count:
        body["count"] = total
        body["more"] = offset + len(listed) < total
    return answer(body)


def tree_title(tree_key: Any) -> str:
    return f"{tree_key.source_name} :: {tree_key.source_group} :: {tree_key.name}"


def tree_type(tree: Tree) -> str:
    if tree.routine is None:
        return "Tree"
    return "Local Routine" if tree.key.source_name not in ("", "-") else "Global Routine"


def tree_shape(tree: Tree, version: int | None, include: frozenset[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": tree.key.name,
        "sourceName": tree.key.source_name,
        "sourceGroup": tree.key.source_group,
        "title": tree_title(tree.key),
        "type": tree_type(tree),
        "status": tree.status,
        "notes": tree.description,
        "ownerEmail": "",
    }
    if version is not None:
        body["versionId"] = version
    if tree.routine is not None:
        body["definitionId"] = tree.routine.definition_id
    if "treeJson" in include:
        body["treeJson"] = json.loads(formats.json_body(dict(tree.definition)))
    return body


def present(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without its null fields: the document types them, and null is none of them."""
    return {name: value for name, value in body.items() if value is not None}


def task_shape(task: Task) -> dict[str, Any]:
    return present(
        {
            "id": task.id,
            "nodeId": task.name,
            "nodeName": task.name,
            "definitionId": task.handler_id,
            "loopIndex": task.loop_index,
            "branchId": 0,
            "status": task.status.value,
            "token": task.token,
            "results": dict(task.results),
            "deferredResults": {},
            "visible": True,
            "duration": max(0, round((task.updated_at - task.created_at) * 1000)),
            "createdAt": timestamp(task.created_at),
            "updatedAt": timestamp(task.updated_at),
        }
    )


def run_shape(run: Run, include: frozenset[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "sourceId": run.source_id,
        "status": run.status.value,
        "sourceData": formats.json_body(dict(run.inputs)),
        "tree": {
            "name": run.tree_name,
            "sourceName": run.source_name,
            "sourceGroup": run.source_group,
            "title": f"{run.source_name} :: {run.source_group} :: {run.tree_name}",
            "versionId": run.tree_version,
        },
        "createdAt": timestamp(run.created_at),
        "updatedAt": timestamp(run.updated_at),
    }
    if run.parent_run_id is not None:
        body["parentId"] = run.parent_run_id
    if "inputs" in include:
        body["inputs"] = dict(run.inputs)
    if "outputs" in include:
        body["outputs"] = dict(run.values)
    if "tasks" in include:
        body["tasks"] = [task_shape(task) for task in run.tasks]
    if "exceptions" in include:
        body["exceptions"] = [error_shape(error, frozenset()) for error in run.errors]
    if "children" in include:
        body["children"] = [
            {"id": link.run_id, "status": link.status.value, "tree": {"name": link.tree_name}}
            for link in run.children
        ]
    return body


def error_shape(error: RunError, include: frozenset[str], run: Run | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": error.id,
        "type": error.type,
        "status": error.status,
        "summary": error.summary,
        "relatedItem1Id": error.task_id or error.node,
        "relatedItem1Type": "Task" if error.task_id else "Node",
        "relatedItem2Id": str(error.run_id) if error.run_id is not None else "",
        "relatedItem2Type": "Run",
        "createdAt": timestamp(error.created_at),
    }
    if "text" in include or "details" in include:
        body["text"] = error.text
    if "messages" in include:
        body["messages"] = [{"text": error.text}] if error.text else []
    if error.resolution_action is not None:
        body["resolution"] = error.resolution_message or ""
        body["resolutionAction"] = error.resolution_action
    if "run" in include and run is not None:
        body["run"] = {
            "id": run.id,
            "status": run.status.value,
            "source": {"name": run.source_name, "status": "Active", "type": SYSTEM_NAME},
            "tree": {
                "name": run.tree_name,
                "sourceName": run.source_name,
                "sourceGroup": run.source_group,
                "title": f"{run.source_name} :: {run.source_group} :: {run.tree_name}",
            },
        }
    return body


def trigger_shape(trigger: Trigger) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": trigger.id,
        "action": trigger.action.value,
        "status": trigger.status.value,
        "type": "Root" if trigger.task_id is None else "Branch",
        "mode": "Immediate",
        "runId": trigger.run_id,
        "createdAt": timestamp(trigger.created_at),
    }
    if trigger.token is not None:
        body["token"] = trigger.token
    if trigger.message is not None:
        body["message"] = trigger.message
    if trigger.engine is not None:
        body["engineIdentification"] = trigger.engine
    return body


def handler_shape(handler: Handler, include: frozenset[str]) -> dict[str, Any]:
    definition_id = handler.definition_id
    name, _, version = definition_id.rpartition("_v")
    body: dict[str, Any] = {
        "definitionId": definition_id,
        "definitionName": name if version.isdigit() else definition_id,
        "definitionVersion": version if version.isdigit() else "1",
        "name": (name if version.isdigit() else definition_id).replace("_", " ").title(),
        "description": handler.description,
        "deferrable": handler.deferrable,
        "status": "Active",
        "visible": True,
    }
    if "parameters" in include:
        body["parameters"] = [
            {
                "id": parameter.name,
                "name": parameter.name,
                "required": parameter.required,
                "defaultValue": parameter.default or "",
                "description": parameter.description,
                "menu": ",".join(parameter.menu),
            }
            for parameter in handler.parameters
        ]
    if "results" in include:
        body["results"] = [{"name": result} for result in handler.results]
    return body


__all__ = [
    "answer",
    "error_shape",
    "handler_shape",
    "includes",
    "message",
    "page",
    "run_shape",
    "single",
    "task_shape",
    "timestamp",
    "tree_shape",
    "tree_title",
    "tree_type",
    "trigger_shape",
]
