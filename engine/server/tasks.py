"""Tasks (scheduled tasks) under ``/api/tasks``, for administrators.

- ``POST /api/tasks`` creates one (201), ``GET /api/tasks`` lists them (paged, oldest first),
  ``GET /api/tasks/{id}`` reads one, ``PUT`` replaces every field, ``PATCH`` changes the fields
  given, ``DELETE`` removes it and its history (204);
- ``POST /api/tasks/{id}/run-now`` fires it once now, enabled or not (202, the firing with its
  trigger and run: durable, processed by the engine's workers);
- ``GET /api/tasks/{id}/history``: its firings, newest first: runs started, and slots missed or
  coalesced with the reason.

A task names a tree (``source_name``, ``source_group``, ``tree_name``) or a process
(``processName``), whose instances it creates with ``fields``, an object of name: value, over the
current fields of ``instance`` if one is named; those instances' creator is the administrator who
created the task. A firing's history entry names the instance it created.

Every route goes through ``Engine.schedules`` and needs an administrator's token (401 without
one, 403 for a plain user). What the engine refuses is 400 naming the field (an unknown tree or
process, a field the process does not declare or let callers set, an unknown instance, a tree
and a process both named or neither, a cron expression that does not parse, a one-off in the
past, an interval of zero, an unknown time zone) and nothing is stored; an unknown id is 404; a
body of the wrong shape is 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.server.auth import caller
from engine.server.json_bodies import StrictJSONRoute
from engine.server.paging import Id, Limit, Offset, app_engine, next_page, page_of
from engine.server.read_models import ErrorBody
from engine.server.task_models import FiringOut, FiringPage, TaskIn, TaskOut, TaskPage, TaskPatch

ADMIN_ROLES = ("admin",)

_admin = caller(ADMIN_ROLES)
Admin = Annotated[User, Depends(_admin)]
router = APIRouter(
    prefix="/api/tasks",
    tags=["tasks"],
    route_class=StrictJSONRoute,
    dependencies=[Depends(_admin)],
    responses={
        401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
        403: {"model": ErrorBody, "description": "The token's user is not an administrator"},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No task has this id"}
}
_REFUSED: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "A field the engine refuses, named: unknown tree or process, unknown "
        "or not settable field, unknown instance, tree and process both or neither, bad cron "
        "expression, one-off in the past, interval of zero, unknown time zone, bad inputs",
    },
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
}
_BAD_PAGE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A limit over the cap, or a bad offset"}
}


@router.post(
    "",
    summary="Create a scheduled task",
    response_model=TaskOut,
    status_code=201,
    responses=_REFUSED,
)
async def create_task(request: Request, user: Admin, body: TaskIn) -> TaskOut:
    schedules = app_engine(request).schedules
    created = await run_in_threadpool(
        lambda: schedules.create(**body.as_engine(), created_by=user.name, creator_id=user.id)
    )
    return TaskOut.of(created)


@router.get(
    "", summary="Scheduled tasks, oldest first", response_model=TaskPage, responses=_BAD_PAGE
)
async def list_tasks(request: Request, limit: Limit = None, offset: Offset = None) -> TaskPage:
    limit, offset = page_of(request, limit, offset)
    schedules = app_engine(request).schedules

    def query() -> tuple[int, list[TaskOut]]:
        found = schedules.list(limit=limit, offset=offset)
        return schedules.count(), [TaskOut.of(schedule) for schedule in found]

    total, items = await run_in_threadpool(query)
    return TaskPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next=next_page(request, total=total, limit=limit, offset=offset),
    )


@router.get("/{task_id}", summary="A scheduled task", response_model=TaskOut, responses=_NOT_FOUND)
async def get_task(request: Request, task_id: Id) -> TaskOut:
    return TaskOut.of(await run_in_threadpool(app_engine(request).schedules.get, task_id))


@router.put(
    "/{task_id}",
    summary="Replace a scheduled task's fields",
    response_model=TaskOut,
    responses=_NOT_FOUND | _REFUSED,
)
async def replace_task(request: Request, task_id: Id, body: TaskIn) -> TaskOut:
    schedules = app_engine(request).schedules
    changed = await run_in_threadpool(lambda: schedules.update(task_id, **body.as_engine()))
    return TaskOut.of(changed)


@router.patch(
    "/{task_id}",
    summary="Change some of a scheduled task's fields",
    response_model=TaskOut,
    responses=_NOT_FOUND | _REFUSED,
)
async def change_task(request: Request, task_id: Id, body: TaskPatch) -> TaskOut:
    schedules = app_engine(request).schedules
    changed = await run_in_threadpool(lambda: schedules.update(task_id, **body.as_engine()))
    return TaskOut.of(changed)


@router.delete(
    "/{task_id}",
    summary="Delete a scheduled task and its history",
    status_code=204,
    response_class=Response,
    responses=_NOT_FOUND | {204: {"description": "Deleted"}},
)
async def delete_task(request: Request, task_id: Id) -> Response:
    await run_in_threadpool(app_engine(request).schedules.delete, task_id)
    return Response(status_code=204)


@router.post(
    "/{task_id}/run-now",
    summary="Fire a scheduled task once now (its run is processed by the engine's workers)",
    response_model=FiringOut,
    status_code=202,
    responses=_NOT_FOUND
    | {400: {"model": ErrorBody, "description": "The task's tree cannot be started now"}},
)
async def run_task_now(request: Request, task_id: Id) -> FiringOut:
    firing = await run_in_threadpool(app_engine(request).schedules.run_now, task_id)
    return FiringOut.of(firing)


@router.get(
    "/{task_id}/history",
    summary="A scheduled task's firings, newest first, skipped ones with why",
    response_model=FiringPage,
    responses=_NOT_FOUND | _BAD_PAGE,
)
async def task_history(
    request: Request, task_id: Id, limit: Limit = None, offset: Offset = None
) -> FiringPage:
    limit, offset = page_of(request, limit, offset)
    schedules = app_engine(request).schedules

    def query() -> tuple[int, list[FiringOut]]:
        found = schedules.history(task_id, limit=limit, offset=offset)
        return schedules.count_history(task_id), [FiringOut.of(firing) for firing in found]

    total, items = await run_in_threadpool(query)
    return FiringPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next=next_page(request, total=total, limit=limit, offset=offset),
    )


__all__ = ["router"]
