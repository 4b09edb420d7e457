"""The v2 errors: list and read run errors, resolve a batch with Kinetic's actions.

``GET /errors`` filters by ``runId``, ``status`` and ``type`` (what treeflow's error index
answers; other filters of the document are refused with 400 naming them). ``POST
/errors/resolve`` takes ``{"ids", "action", "resolution"}``: every id is checked first (an
unknown id, one already resolved or an action its type does not allow refuses the whole batch,
and nothing is written), then each is resolved as ``POST /api/errors/{id}/resolve`` does, by a
Resolve trigger a worker applies. An administrator's call, like that route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.errors import BadRequest, BadResolution, ErrorAlreadyResolved
from engine.records import Run, RunError
from engine.server.auth import AnyUser, caller
from engine.server.kinetic_v2.runs import bounded, json_object, only_filters, paged
from engine.server.kinetic_v2.shapes import answer, error_shape, includes, message, page, single
from engine.server.paging import MAX_ID, app_engine
from engine.statuses import ErrorStatus, ResolutionAction, allowed_resolutions

router = APIRouter()
Admin = Annotated[User, Depends(caller(("admin",)))]
Include = Annotated[str | None, Query(description="comma-separated: details, messages, run, text")]
SUPPORTED_FILTERS = frozenset({"runId", "status", "type", "limit", "offset", "include", "count"})
MAX_BATCH = 1000


@router.get("/errors", summary="listErrors")
async def list_errors(
    request: Request,
    _user: AnyUser,
    include: Include = None,
    run_id: Annotated[int | None, Query(alias="runId")] = None,
    status: str | None = None,
    error_type: Annotated[str | None, Query(alias="type")] = None,
    limit: int = 100,
    offset: int = 0,
    count: bool = True,
) -> Response:
    only_filters(request, SUPPORTED_FILTERS, of="errors")
    limit, offset = paged(limit, offset)
    if run_id is not None:
        bounded("runId", run_id, low=1, high=MAX_ID)
    if status is not None and status not in set(ErrorStatus):
        raise BadRequest(field="status", reason=f"{status!r} is not Active or Handled")
    wanted = includes(include)
    engine = app_engine(request)
    filters: dict[str, Any] = {"run_id": run_id, "status": status, "error_type": error_type or None}

    def query() -> tuple[int, list[tuple[RunError, Run | None]]]:
        total = engine.count_errors(**filters)
        found = engine.list_errors(**filters, limit=limit, offset=offset)
        runs: dict[int, Run] = {}
        if "run" in wanted:
            for error in found:
                if error.run_id is not None and error.run_id not in runs:
                    runs[error.run_id] = engine.get_run(error.run_id)
        return total, [(error, runs.get(error.run_id or 0)) for error in found]

    total, found = await run_in_threadpool(query)
    items = [error_shape(error, wanted, run) for error, run in found]
    return page("errors", items, total=total, limit=limit, offset=offset, count=count)


@router.get("/errors/{error_id}", summary="retrieveError")
async def retrieve_error(
    request: Request, _user: AnyUser, error_id: str, include: Include = None
) -> Response:
    engine = app_engine(request)
    wanted = includes(include)

    def read() -> tuple[RunError, Run | None]:
        error = engine.get_error(error_id)
        run = engine.get_run(error.run_id) if "run" in wanted and error.run_id else None
        return error, run

    error, run = await run_in_threadpool(read)
    return single("error", error_shape(error, wanted, run))


def _batch(body: dict[str, Any]) -> tuple[list[str], str, str | None]:
    unknown = sorted(set(body) - {"ids", "action", "resolution"})
    if unknown:
        raise BadRequest(field="body", reason=f"unknown property {', '.join(map(repr, unknown))}")
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
        raise BadRequest(field="ids", reason=f"must be a list of 1 to {MAX_BATCH} error ids")
    if not all(isinstance(id_, int | str) and not isinstance(id_, bool) for id_ in ids):
        raise BadRequest(field="ids", reason="every id must be a number or a string")
    action = body.get("action")
    if not isinstance(action, str) or action not in set(ResolutionAction):
        allowed = ", ".join(action.value for action in ResolutionAction)
        raise BadRequest(field="action", reason=f"must be one of {allowed}")
    resolution = body.get("resolution")
    if resolution is not None and not isinstance(resolution, str):
        raise BadRequest(field="resolution", reason="must be a string")
    return list(dict.fromkeys(str(id_) for id_ in ids)), action, resolution


@router.post("/errors/resolve", summary="resolveErrors")
async def resolve_errors(request: Request, user: Admin) -> Response:
    ids, action, resolution = _batch(json_object(await request.body()))
    engine = app_engine(request)

    def resolve() -> int:
        for error in [engine.get_error(error_id) for error_id in ids]:  # every one, first
            if error.status != ErrorStatus.ACTIVE or error.resolution_action is not None:
                raise ErrorAlreadyResolved(error_id=error.id, action=error.resolution_action)
            allowed = allowed_resolutions(error.type, at_node=error.task_id is not None)
            if action not in allowed:
                raise BadResolution(
                    action=action, error_type=error.type, allowed=[a.value for a in allowed]
                )
        for error_id in ids:
            engine.resolve_error(error_id, action, message=resolution, resolved_by=user.name)
        return len(ids)

    resolved = await run_in_threadpool(resolve)
    noun = "error" if resolved == 1 else "errors"
    return message(f"Resolved {resolved} task {noun} with {action!r}.")


@router.get("/meta/availableErrorActions", summary="availableErrorActions")
async def available_error_actions(_user: AnyUser) -> Response:
    from engine.statuses import RESOLUTIONS

    actions = {kind.value: [a.value for a in allowed] for kind, allowed in RESOLUTIONS.items()}
    return answer({"availableErrorActions": actions})


__all__ = ["router"]
