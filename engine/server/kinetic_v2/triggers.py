"""The v2 triggers: all of them, one by id, the backlog and the paused ones.

``GET /triggers`` lists every trigger, newest first; ``/triggers/backlog`` those New or Work In
Progress (what the workers have still to do), ``/triggers/paused`` those held back while their
run has an active Budget Error (treeflow's Paused status). Each filters by ``runId`` and pages
with ``limit`` and ``offset``; ``status`` narrows ``GET /triggers``. Other filters of the
document are refused with 400 naming them. Changing or deleting a trigger is not offered: a
trigger is the engine's durable record of work, changed only by processing it (errors are
resolved through ``POST /errors/resolve``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import BadRequest
from engine.server.auth import AnyUser
from engine.server.kinetic_v2.runs import bounded, only_filters, paged
from engine.server.kinetic_v2.shapes import page, single, trigger_shape
from engine.server.paging import MAX_ID, app_engine
from engine.statuses import TriggerStatus

router = APIRouter()
SUPPORTED = frozenset({"runId", "status", "limit", "offset", "include"})
BACKLOG = (TriggerStatus.NEW.value, TriggerStatus.WORK_IN_PROGRESS.value)
RunId = Annotated[int | None, Query(alias="runId")]


async def _listed(
    request: Request,
    statuses: Sequence[str] | None,
    run_id: int | None,
    limit: int,
    offset: int,
) -> Response:
    only_filters(request, SUPPORTED, of="triggers")
    limit, offset = paged(limit, offset)
    if run_id is not None:
        bounded("runId", run_id, low=1, high=MAX_ID)
    engine = app_engine(request)
    total, found = await run_in_threadpool(
        lambda: engine.list_triggers(statuses=statuses, run_id=run_id, limit=limit, offset=offset)
    )
    items = [trigger_shape(trigger) for trigger in found]
    return page("triggers", items, total=total, limit=limit, offset=offset)


@router.get("/triggers", summary="listTriggers")
async def list_triggers(
    request: Request,
    _user: AnyUser,
    run_id: RunId = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Response:
    if status is not None and status not in set(TriggerStatus):
        allowed = ", ".join(s.value for s in TriggerStatus)
        raise BadRequest(field="status", reason=f"{status!r} is not one of {allowed}")
    statuses = None if status is None else [status]
    return await _listed(request, statuses, run_id, limit, offset)


@router.get("/triggers/backlog", summary="listBackloggedTriggers")
async def list_backlogged_triggers(
    request: Request, _user: AnyUser, run_id: RunId = None, limit: int = 100, offset: int = 0
) -> Response:
    return await _listed(request, BACKLOG, run_id, limit, offset)


@router.get("/triggers/paused", summary="listPausedTriggers")
async def list_paused_triggers(
    request: Request, _user: AnyUser, run_id: RunId = None, limit: int = 100, offset: int = 0
) -> Response:
    return await _listed(request, [TriggerStatus.PAUSED.value], run_id, limit, offset)


@router.get("/triggers/{trigger_id}", summary="retrieveTrigger")
async def retrieve_trigger(request: Request, _user: AnyUser, trigger_id: int) -> Response:
    bounded("id", trigger_id, low=1, high=MAX_ID)
    trigger = await run_in_threadpool(app_engine(request).get_trigger, trigger_id)
    return single("trigger", trigger_shape(trigger))


__all__ = ["router"]
