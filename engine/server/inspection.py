"""Inspection, for administrators: runs with their tasks, triggers, errors; lists with paging;
and the resolution of errors.

Who may read what: ``GET /api/runs/{id}`` and ``GET /api/runs`` answer any signed-in user, a
plain user only about the runs it created through the API (the engine records the creator with
the run, as for instances; another user's run is 404, as if it did not exist), an
administrator about every run. The web console shows the same runs to the same users
(``engine.server.console.access``).

``GET /api/runs/{id}``, ``GET /api/runs``, ``GET /api/triggers/{id}`` and ``GET /api/errors``
read through the engine (and :mod:`engine.store.inspection` for counting runs) and answer the
pydantic models of :mod:`engine.server.read_models`; ``GET /api/runs/{id}/tree`` gives the
definition of the tree version the run runs on (a version loaded since does not change it). An
error is shown with its resolution (action, message, by whom, when, the Resolve trigger) once
one is accepted. The other routes need a bearer token of the ``admin`` role: a plain user gets
403 ``insufficient_scope``.

``POST /api/errors/{id}/resolve`` with the JSON body ``{"action": ..., "message": ...}``
accepts a resolution through ``Engine.resolve_error`` (recorded as resolved by the caller's user
name) and answers 202 with the Resolve trigger (``id``, ``run_id``, ``action``, ``status``):
durable, but applied later by an engine worker (``GET /api/triggers/{id}`` follows it). An
action the error's type does not allow is 400 naming the allowed ones, an unknown id 404, an
error already resolved (or whose resolution is queued) 409.

Lists are newest first. ``limit`` (default 50) may not exceed the server's page cap
(``ServerSettings.max_page_size``): a larger one is refused with 400 naming the cap, never
silently cut. Each page says the ``total`` that matches and the path of the ``next`` page.
Filters are checked before any query: a status that is not one of the documented values is
refused naming them (422, as for any parameter of the wrong type); a text filter with a NUL
character or over 4096 characters is refused with 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine import inputs
from engine.auth import User
from engine.errors import RunNotFound
from engine.records import Run, RunError
from engine.server.auth import caller
from engine.server.json_bodies import StrictJSONRoute
from engine.server.paging import MAX_ID, Id, Limit, Offset, app_engine, next_page, page_of
from engine.server.read_models import (
    ErrorBody,
    ErrorOut,
    ErrorPage,
    ResolutionOut,
    ResolveIn,
    RunOut,
    RunPage,
    RunSummary,
    RunTreeOut,
    TriggerOut,
)
from engine.statuses import ErrorStatus, RunStatus

ADMIN_ROLES = ("admin",)
MAX_ERROR_ID = 64  # as Engine.resolve_error's

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
    403: {"model": ErrorBody, "description": "The token's user is not an administrator"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such id"}
}
_BAD_LIST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A limit over the cap, a bad offset or filter"}
}

_admin = caller(ADMIN_ROLES)
Admin = Annotated[User, Depends(_admin)]  # the same callable: FastAPI runs it once a request
router = APIRouter(
    prefix="/api",
    tags=["inspection"],
    route_class=StrictJSONRoute,
    responses=_ERRORS,
)
_ADMIN_ONLY = [Depends(_admin)]
AnyUser = Annotated[User, Depends(caller())]


def _owner(user: User) -> str | None:
    """The ``created_by`` a user's reads are limited to: None (every run) for an admin."""
    return None if user.is_admin else user.id


@router.get(
    "/runs/{run_id}",
    summary="A run with its tasks (and their tokens) and errors (a plain user's own runs)",
    response_model=RunOut,
    responses=_NOT_FOUND,
)
async def get_run(request: Request, user: AnyUser, run_id: Id) -> RunOut:
    engine = app_engine(request)

    def read() -> Run:
        owner = _owner(user)
        if owner is not None and engine.run_creator(run_id) != owner:
            raise RunNotFound(run_id=run_id)
        return engine.get_run(run_id)

    return RunOut.of(await run_in_threadpool(read))


@router.get(
    "/runs/{run_id}/tree",
    summary="The definition of the tree version a run runs on",
    dependencies=_ADMIN_ONLY,
    response_model=RunTreeOut,
    responses=_NOT_FOUND,
)
async def get_run_tree(request: Request, run_id: Id) -> RunTreeOut:
    engine = app_engine(request)

    def read() -> RunTreeOut:
        run = engine.get_run(run_id)
        return RunTreeOut.of(run, engine.tree_of_run(run).definition)

    return await run_in_threadpool(read)


@router.get(
    "/runs",
    summary="Runs, newest first, by status, tree and source id (a plain user's own runs)",
    response_model=RunPage,
    responses=_BAD_LIST,
)
async def list_runs(
    request: Request,
    user: AnyUser,
    status: Annotated[RunStatus | None, Query(description="only runs in this status")] = None,
    tree_name: Annotated[str | None, Query(description="only runs of this tree")] = None,
    source_id: Annotated[str | None, Query(description="only runs with this source id")] = None,
    limit: Limit = None,
    offset: Offset = None,
) -> RunPage:
    limit, offset = page_of(request, limit, offset)
    filters: dict[str, Any] = {
        "status": None if status is None else status.value,
        "tree_name": inputs.optional("tree_name", tree_name),
        "source_id": inputs.optional("source_id", source_id),
        "created_by": _owner(user),
    }
    engine = app_engine(request)

    def query() -> tuple[int, list[Run]]:
        total = engine.count_runs(**filters)
        found = engine.list_runs(**filters, limit=limit, offset=offset)
        return total, found

    total, found = await run_in_threadpool(query)
    return RunPage(
        items=[RunSummary.of(run) for run in found],
        total=total,
        limit=limit,
        offset=offset,
        next=next_page(request, total=total, limit=limit, offset=offset),
    )


@router.get(
    "/triggers/{trigger_id}",
    summary="A trigger: its action, status, run and, once closed, when and by which engine",
    dependencies=_ADMIN_ONLY,
    response_model=TriggerOut,
    responses=_NOT_FOUND,
)
async def get_trigger(request: Request, trigger_id: Id) -> TriggerOut:
    trigger = await run_in_threadpool(app_engine(request).get_trigger, trigger_id)
    return TriggerOut.of(trigger)


@router.get(
    "/errors",
    summary="Errors of all runs, newest first, by run, status and type",
    dependencies=_ADMIN_ONLY,
    response_model=ErrorPage,
    responses=_BAD_LIST,
)
async def list_errors(
    request: Request,
    run_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="only errors of this run")
    ] = None,
    status: Annotated[ErrorStatus | None, Query(description="Active or Handled")] = None,
    error_type: Annotated[
        str | None,
        Query(alias="type", description="only errors of this type, e.g. Handler Error"),
    ] = None,
    limit: Limit = None,
    offset: Offset = None,
) -> ErrorPage:
    limit, offset = page_of(request, limit, offset)
    filters: dict[str, Any] = {
        "run_id": run_id,
        "status": None if status is None else status.value,
        "error_type": inputs.optional("type", error_type),
    }

    engine = app_engine(request)

    def query() -> tuple[int, list[RunError]]:
        total = engine.count_errors(**filters)
        found = engine.list_errors(**filters, limit=limit, offset=offset)
        return total, found

    total, found = await run_in_threadpool(query)
    return ErrorPage(
        items=[ErrorOut.of(error) for error in found],
        total=total,
        limit=limit,
        offset=offset,
        next=next_page(request, total=total, limit=limit, offset=offset),
    )


@router.post(
    "/errors/{error_id}/resolve",
    summary="Resolve an active error; a worker applies the resolution (Resolve trigger)",
    dependencies=_ADMIN_ONLY,
    response_model=ResolutionOut,
    status_code=202,
    responses={
        202: {"description": "Accepted: the Resolve trigger that applies it, durable"},
        400: {
            "model": ErrorBody,
            "description": "An action the error's type does not allow (naming those it does), "
            "or a bad id, action or message",
        },
        404: {"model": ErrorBody, "description": "No error has this id"},
        409: {"model": ErrorBody, "description": "The error is resolved, or its resolution queued"},
        413: {"model": ErrorBody, "description": "Request body over the size limit"},
    },
)
async def resolve_error(
    request: Request,
    user: Admin,
    error_id: Annotated[str, Path(min_length=1, max_length=MAX_ERROR_ID)],
    body: ResolveIn,
) -> ResolutionOut:
    trigger = await run_in_threadpool(
        app_engine(request).resolve_error,
        error_id,
        body.action,
        message=body.message,
        resolved_by=user.name,
    )
    return ResolutionOut.of(trigger)


__all__ = ["ADMIN_ROLES", "router"]
