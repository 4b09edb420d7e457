"""The v2 runs: search, read, create with source data, run tasks, complete a deferred task.

``GET /runs`` takes the document's filters that treeflow's run index answers (``id``,
``tree``, ``sourceId``, ``status``, ``limit``, ``offset``, ``count``, ``include``); a filter
it cannot apply (``groupFragment``, ``start``, ...) is refused with 400 naming it, rather than
ignored (a silently ignored filter answers a different question than the one asked).
``include=tasks`` gives each run's tasks with their deferral tokens, ``exceptions`` its errors,
``inputs`` and ``outputs`` its values. ``POST /runs?sourceName=&sourceGroup=&name=`` starts the
tree with the JSON body as ``source.data``. ``POST /runs/task/{token}`` and ``PUT`` complete and
update a deferred task (``results`` is results XML, as the document says).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.errors import BadRequest, ItemNotFound
from engine.json_input import parse_json
from engine.records import Run, StartCall
from engine.server.auth import AnyUser
from engine.server.deferral_auth import deferral_caller, path_token
from engine.server.kinetic_v2.shapes import (
    answer,
    includes,
    message,
    page,
    run_shape,
    single,
    task_shape,
)
from engine.server.paging import MAX_ID, app_engine
from engine.server.start_batch import start_batcher

router = APIRouter()
TokenCaller = Annotated[User, Depends(deferral_caller(path_token))]
MAX_LIMIT = 1000
# Filters of searchRuns treeflow's run index cannot answer: refused, naming them.
UNSUPPORTED_FILTERS = (
    "afterId",
    "beforeId",
    "start",
    "end",
    "includeSystem",
    "source",
    "group",
    "groupFragment",
    "treeFragment",
    "originatingId",
    "parentId",
    "treeId",
    "treeType",
    "orderBy",
    "direction",
)
Include = Annotated[str | None, Query(description="comma-separated: details, tasks, ...")]


def bounded(name: str, value: int, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise BadRequest(field=name, reason=f"must be from {low} to {high}, not {value}")
    return value


def paged(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` and ``offset`` of a v2 list, checked (400 naming the one out of range)."""
    return bounded("limit", limit, low=1, high=MAX_LIMIT), bounded(
        "offset", offset, low=0, high=MAX_ID
    )


def only_filters(request: Request, supported: frozenset[str], *, of: str) -> None:
    """Refuse (400, naming them) the query parameters a v2 list cannot apply: a filter
    silently ignored would answer another question than the one asked."""
    unsupported = sorted(set(request.query_params) - supported)
    if unsupported:
        names = ", ".join(repr(name) for name in unsupported)
        raise BadRequest(field="query", reason=f"treeflow cannot filter {of} by {names}")


def json_object(body: bytes, *, required: bool = True) -> dict[str, Any]:
    if not body.strip():
        if required:
            raise BadRequest(field="body", reason="a JSON object is required")
        return {}
    value = parse_json(body, field="body")
    if not isinstance(value, dict):
        raise BadRequest(field="body", reason="must be a JSON object")
    return value


@router.get("/runs", summary="searchRuns")
async def search_runs(
    request: Request,
    _user: AnyUser,
    include: Include = None,
    run_id: Annotated[int | None, Query(alias="id")] = None,
    tree: str | None = None,
    source_id: Annotated[str | None, Query(alias="sourceId")] = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    count: bool = True,
) -> Response:
    unsupported = [name for name in UNSUPPORTED_FILTERS if name in request.query_params]
    if unsupported:
        names = ", ".join(repr(name) for name in unsupported)
        raise BadRequest(field="query", reason=f"treeflow cannot filter runs by {names}")
    limit, offset = paged(limit, offset)
    wanted = includes(include)
    engine = app_engine(request)
    filters: dict[str, Any] = {
        "status": status or None,
        "tree_name": tree or None,
        "source_id": source_id,
    }

    def query() -> tuple[int, list[Run]]:
        if run_id is not None:
            bounded("id", run_id, low=1, high=MAX_ID)
            found = [engine.get_run(run_id)]
            return 1, found
        total = engine.count_runs(**filters)
        runs = engine.list_runs(**filters, limit=limit, offset=offset)
        if "tasks" in wanted or "exceptions" in wanted or "children" in wanted:
            runs = [engine.get_run(run.id) for run in runs]  # with their tasks and errors
        return total, runs

    total, runs = await run_in_threadpool(query)
    items = [run_shape(run, wanted) for run in runs]
    return page("runs", items, total=total, limit=limit, offset=offset, count=count)


@router.get("/runs/{run_id}", summary="retrieveRun")
async def retrieve_run(
    request: Request, _user: AnyUser, run_id: int, include: Include = None
) -> Response:
    bounded("id", run_id, low=1, high=MAX_ID)
    run = await run_in_threadpool(app_engine(request).get_run, run_id)
    return single("run", run_shape(run, includes(include)))


@router.get("/runs/{run_id}/tasks", summary="retrieveRunTasks")
async def retrieve_run_tasks(request: Request, _user: AnyUser, run_id: int) -> Response:
    bounded("id", run_id, low=1, high=MAX_ID)
    run = await run_in_threadpool(app_engine(request).get_run, run_id)
    return answer({"tasks": [task_shape(task) for task in run.tasks]})


@router.get("/runs/{run_id}/tasks/{task_id}", summary="retrieveRunTask")
async def retrieve_run_task(
    request: Request, _user: AnyUser, run_id: int, task_id: str
) -> Response:
    bounded("id", run_id, low=1, high=MAX_ID)
    run = await run_in_threadpool(app_engine(request).get_run, run_id)
    for task in run.tasks:
        if task.id == task_id:
            return single("task", task_shape(task))
    raise ItemNotFound(kind=f"task of run {run_id}", name=task_id)


@router.post("/runs", summary="createRun")
async def create_run(
    request: Request,
    user: AnyUser,
    source_name: Annotated[str, Query(alias="sourceName")] = "",
    source_group: Annotated[str, Query(alias="sourceGroup")] = "",
    name: str = "",
    include: Include = None,
) -> Response:
    data = json_object(await request.body(), required=False)
    engine = app_engine(request)
    trigger = await start_batcher(request).create_start(
        StartCall(
            source_name=source_name,
            source_group=source_group,
            tree_name=name,
            source_data=data,
            created_by=user.id,
        )
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    run = await run_in_threadpool(engine.get_run, trigger.run_id)
    return single("run", run_shape(run, includes(include)))


async def _deferred(request: Request, token: str, action: str) -> str:
    body = json_object(await request.body(), required=False)
    unknown = sorted(set(body) - {"message", "results"})
    if unknown:
        raise BadRequest(field="body", reason=f"unknown property {', '.join(map(repr, unknown))}")
    for name in ("message", "results"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(field=name, reason="must be a string")
    engine = app_engine(request)
    trigger = await run_in_threadpool(
        partial(
            engine.create_deferred,
            token=token,
            action=action,
            results=body.get("results") or None,
            message=body.get("message") or None,
        )
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    return token


@router.post("/runs/task/{token}", summary="completeDeferredTask")
async def complete_deferred_task(request: Request, _user: TokenCaller, token: str) -> Response:
    await _deferred(request, token, "Complete")
    return message(f"Completed the deferred task with token {token}.")


@router.put("/runs/task/{token}", summary="updateDeferredTask")
async def update_deferred_task(request: Request, _user: TokenCaller, token: str) -> Response:
    await _deferred(request, token, "Update")
    return message(f"Updated the deferred task with token {token}.")


__all__ = ["Include", "bounded", "json_object", "only_filters", "paged", "router"]
