"""Run control over HTTP, for administrators: cancel a run, run it again, resume it at a node.

- ``POST /api/runs/{id}/cancel`` ``{"reason": ...}``: ``Engine.cancel_run``, recorded as asked
  by the caller's user name. 202 with the Cancel trigger; cancelling again answers the same
  trigger; a Completed run is 409 naming its status.
- ``POST /api/runs/{id}/run-again`` ``{"inputs": {...}, "version": "same" | "current"}``:
  ``Engine.run_again``; 202 with the new run's Root trigger (its ``run_id`` is the new run, whose
  ``again_of`` is this one). ``inputs`` replace the first run's inputs of those names.
- ``POST /api/runs/{id}/manual-trigger`` ``{"node": ..., "results": "<results>...", "reason":
  ...}``: ``Engine.manual_trigger``, recorded with the caller's user name and the reason
  (required). 202 with the Manual trigger; a node the run's tree does not have is 400 naming the
  nodes it has, a run that is not Started or Failed 409.

Every route needs a bearer token of the ``admin`` role (403 ``insufficient_scope`` otherwise), as
the rest of ``/api`` does; bodies are strict JSON (``engine.server.json_bodies``), an unknown
field is refused, and nothing is written when a request is refused. Each accepted request is
counted in ``/metrics`` (``treeflow_run_control_total{request}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine.auth import User
from engine.records import Trigger
from engine.server.auth import caller
from engine.server.inspection import ADMIN_ROLES
from engine.server.json_bodies import StrictJSONRoute
from engine.server.metrics import Metrics
from engine.server.paging import Id, app_engine
from engine.server.read_models import ErrorBody, TriggerOut

_admin = caller(ADMIN_ROLES)
Admin = Annotated[User, Depends(_admin)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
    403: {"model": ErrorBody, "description": "The token's user is not an administrator"},
    404: {"model": ErrorBody, "description": "No run has this id"},
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
}
router = APIRouter(
    prefix="/api",
    tags=["run control"],
    route_class=StrictJSONRoute,
    dependencies=[Depends(_admin)],
    responses=_RESPONSES,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancelIn(_Body):
    reason: str | None = Field(default=None, description="why, recorded on the Cancel trigger")


class RunAgainIn(_Body):
    inputs: dict[str, str] = Field(
        default_factory=dict, description="inputs to change; the first run's others are kept"
    )
    version: Literal["same", "current"] = Field(
        default="same",
        description="same: the first run's tree version; current: the tree's version now",
    )


class ManualTriggerIn(_Body):
    node: str = Field(description="the node the run resumes at, outside any loop")
    results: str | None = Field(default=None, description="results XML for the node")
    reason: str = Field(description="why, recorded on the Manual trigger with who asked")


async def _accepted(request: Request, kind: str, accept: Callable[[], Trigger]) -> TriggerOut:
    """Accept the request in the thread pool, count it in /metrics, answer its trigger."""
    trigger = await run_in_threadpool(accept)
    metrics: Metrics = request.app.state.metrics
    metrics.run_control.labels(kind).inc()
    return TriggerOut.of(trigger)


@router.post(
    "/runs/{run_id}/cancel",
    summary="Cancel a run and the routine runs under it (a Cancel trigger)",
    response_model=TriggerOut,
    status_code=202,
    responses={409: {"model": ErrorBody, "description": "The run is Completed"}},
)
async def cancel_run(request: Request, user: Admin, run_id: Id, body: CancelIn) -> TriggerOut:
    engine = app_engine(request)
    return await _accepted(
        request, "cancel", lambda: engine.cancel_run(run_id, body.reason, user.name)
    )


@router.post(
    "/runs/{run_id}/run-again",
    summary="Start a new run of a run's tree, same or edited inputs, linked to it",
    response_model=TriggerOut,
    status_code=202,
    responses={400: {"model": ErrorBody, "description": "A routine's run, or bad inputs"}},
)
async def run_again(request: Request, user: Admin, run_id: Id, body: RunAgainIn) -> TriggerOut:
    engine = app_engine(request)
    return await _accepted(
        request,
        "again",
        lambda: engine.run_again(
            run_id, inputs=body.inputs, version=body.version, created_by=user.id
        ),
    )


@router.post(
    "/runs/{run_id}/manual-trigger",
    summary="Resume a stalled run at a node with given results (a Manual trigger)",
    response_model=TriggerOut,
    status_code=202,
    responses={
        400: {"model": ErrorBody, "description": "An unknown node, bad results or no reason"},
        409: {"model": ErrorBody, "description": "The run is not Started or Failed"},
    },
)
async def manual_trigger(
    request: Request, user: Admin, run_id: Id, body: ManualTriggerIn
) -> TriggerOut:
    engine = app_engine(request)
    return await _accepted(
        request,
        "manual",
        lambda: engine.manual_trigger(
            run_id, body.node, results=body.results, reason=body.reason, by=user.name
        ),
    )


__all__ = ["CancelIn", "ManualTriggerIn", "RunAgainIn", "router"]
