"""The process API, for administrators: list processes, read one, deploy a new version.

- ``GET /api/processes``: every process at its current version (name, tree, version, status,
  description, fields), by name. Processes are few (one per tree): the list is not paged.
- ``GET /api/processes/{name}``: one process with its current ``definition`` and every
  version it has had.
- ``POST /api/processes`` with a tree's YAML as the body (``application/yaml``; the body is
  read as UTF-8 text whatever its declared type) deploys it: validated exactly as a tree file
  is, it becomes a new version of its process (201), or changes nothing when it is the current
  version already (200). Runs in flight stay on the version they started with. An invalid
  definition answers 400 with ``problems``, every problem with its line and node, and nothing
  is stored; a body over the server's size limit 413.

Every route needs a bearer token of the ``admin`` role: a plain user gets 403
``insufficient_scope``.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import BadRequest
from engine.server.auth import caller
from engine.server.kianda_models import (
    DeployedOut,
    ProblemsBody,
    ProcessOut,
    ProcessSummaryOut,
)
from engine.server.paging import app_engine
from engine.server.read_models import ErrorBody
from engine.tree.fields import MAX_PROCESS_NAME

ADMIN_ROLES = ("admin",)
EXAMPLE = """\
source: Kianda
group: Examples
name: Expense Claim
fields:
  Amount:
    default: 0
nodes:
  Start:
    handler: system_start_v1
"""

router = APIRouter(
    prefix="/api/processes",
    tags=["processes"],
    dependencies=[Depends(caller(ADMIN_ROLES))],
    responses={
        401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
        403: {"model": ErrorBody, "description": "The token's user is not an administrator"},
    },
)
_TREE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a tree definition, as a file in trees/ holds it (see the README, Trees)",
    "required": ["source", "group", "name", "nodes"],
    "properties": {
        "source": {"type": "string"},
        "group": {"type": "string"},
        "name": {"type": "string"},
        "process": {"type": "string"},
        "description": {"type": "string"},
        "status": {"type": "string", "enum": ["Active", "Inactive", "Paused"]},
        "fields": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "nodes": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "examples": [yaml.safe_load(EXAMPLE)],
}
_DEPLOY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the tree's YAML",
        "content": {"application/yaml": {"schema": _TREE_SCHEMA}},
    }
}


@router.get(
    "", summary="Every process at its current version", response_model=list[ProcessSummaryOut]
)
async def list_processes(request: Request) -> list[ProcessSummaryOut]:
    found = await run_in_threadpool(app_engine(request).list_processes)
    return [ProcessSummaryOut.of(process) for process in found]


@router.get(
    "/{name}",
    summary="A process: its current definition, fields and versions",
    response_model=ProcessOut,
    responses={404: {"model": ErrorBody, "description": "No process has that name"}},
)
async def get_process(
    request: Request, name: Annotated[str, Path(min_length=1, max_length=MAX_PROCESS_NAME)]
) -> ProcessOut:
    process = await run_in_threadpool(app_engine(request).get_process, name)
    return ProcessOut.of(process)


@router.post(
    "",
    summary="Deploy a tree's YAML as a new version of its process",
    response_model=DeployedOut,
    status_code=201,
    openapi_extra=_DEPLOY_BODY,
    responses={
        200: {"model": DeployedOut, "description": "The current version already: nothing new"},
        201: {"description": "A new version, which new instances start on"},
        400: {"model": ProblemsBody, "description": "Not a valid tree: every problem listed"},
        413: {"model": ErrorBody, "description": "Request body over the size limit"},
    },
)
async def deploy_process(request: Request) -> Response:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(field="body", reason=f"a definition is UTF-8 text: {exc}") from exc
    if "\x00" in text:
        raise BadRequest(field="body", reason="contains a NUL character")
    deployed = await run_in_threadpool(app_engine(request).deploy_process, text)
    body = DeployedOut(**ProcessOut.detail(deployed.process), created=deployed.created)
    return Response(
        body.model_dump_json(),
        status_code=201 if deployed.created else 200,
        media_type="application/json",
    )


__all__ = ["ADMIN_ROLES", "EXAMPLE", "router"]
