"""The v2 run operations that change a run from outside its tree: delete it, start it again at
its Start node. Both are an administrator's calls, like treeflow's own cancel and manual trigger.

``DELETE /runs/{id}`` (deleteRun) answers the run as it was, in the document's ``{"run": ...}``
shape (``include`` as for retrieveRun), and deletes it with its whole call tree and every row
about them (``Engine.delete_run``, the retention purge's deletion). The document says only
that the run is deleted; treeflow refuses, with 409 naming why and nothing deleted, what it
cannot delete without leaving something dangling: a run still Staged or Started, or with a
routine run unfinished or an open trigger (cancel it first: its workers, tokens and callers
would otherwise act on rows that are gone), and a routine's run, which is part of its caller's
record and goes only with its top-level run.

``POST /runs/{id}/triggers`` (createRootTrigger) makes a root trigger "for the node" of the
body's ``nodeId``, which Kinetic's engine processes by running that node's handler. treeflow
does this at the tree's Start node only: there it is a Manual trigger without results
(``Engine.manual_trigger``), which records a new Start task and follows its connectors, as
running the start handler would. At another node a manual trigger records the node's task with
given results instead of calling its handler, which is not what the operation asks: refused
with 400 pointing at ``POST /api/runs/{id}/manual-trigger``. ``loopIndex`` (``/``),
``branchId`` (0) and no ``scheduledAt`` or ``selectionCriterion`` are what a Start node has;
other values are refused with 400 naming them. The run must be Started or Failed (409
otherwise), as for any manual trigger.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.errors import BadRequest
from engine.records import ROOT_LOOP_INDEX, Trigger
from engine.server.auth import caller
from engine.server.kinetic_v2.runs import Include, bounded, json_object
from engine.server.kinetic_v2.shapes import includes, message, run_shape, single
from engine.server.paging import MAX_ID, app_engine

router = APIRouter()
Admin = Annotated[User, Depends(caller(("admin",)))]
ROOT_TRIGGER_PROPERTIES = ("nodeId", "loopIndex", "branchId", "scheduledAt", "selectionCriterion")


@router.delete("/runs/{run_id}", summary="deleteRun")
async def delete_run(
    request: Request, _user: Admin, run_id: int, include: Include = None
) -> Response:
    bounded("id", run_id, low=1, high=MAX_ID)
    wanted = includes(include)
    engine = app_engine(request)

    def delete() -> dict[str, Any]:
        shape = run_shape(engine.get_run(run_id), wanted)  # as it was: it is gone after
        engine.delete_run(run_id)
        return shape

    return single("run", await run_in_threadpool(delete))


def _start_node(body: dict[str, Any], start: str) -> str:
    """The body's ``nodeId`` if it is the tree's Start node, with nothing a Start node lacks;
    else BadRequest naming the property."""
    unknown = sorted(set(body) - set(ROOT_TRIGGER_PROPERTIES))
    if unknown:
        raise BadRequest(field="body", reason=f"unknown property {', '.join(map(repr, unknown))}")
    node = body.get("nodeId")
    if not isinstance(node, str) or not node:
        raise BadRequest(field="nodeId", reason="the node to trigger is required (a string)")
    if node != start:
        raise BadRequest(
            field="nodeId",
            reason=f"treeflow creates a root trigger only at the tree's Start node ({start!r}), "
            f"not {node!r}; to resume a run at another node with its results, use "
            "POST /api/runs/{id}/manual-trigger",
        )
    for name, allowed in (("loopIndex", ROOT_LOOP_INDEX), ("branchId", 0)):
        if body.get(name) not in (None, allowed):
            raise BadRequest(field=name, reason=f"the Start node has only {allowed!r}")
    for name in ("scheduledAt", "selectionCriterion"):
        if body.get(name) is not None:
            raise BadRequest(field=name, reason="treeflow cannot apply it to a root trigger")
    return node


@router.post("/runs/{run_id}/triggers", summary="createRootTrigger")
async def create_root_trigger(request: Request, user: Admin, run_id: int) -> Response:
    bounded("id", run_id, low=1, high=MAX_ID)
    body = json_object(await request.body())
    engine = app_engine(request)

    def accept() -> Trigger:
        start = engine.tree_of_run(engine.get_run(run_id)).start
        node = _start_node(body, start)
        reason = f"Kinetic Task API v2 createRootTrigger at {node!r}"
        return engine.manual_trigger(run_id, node, results=None, reason=reason, by=user.name)

    trigger = await run_in_threadpool(accept)
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    return message(f"Created root trigger {trigger.id} at {trigger.node!r} for run {run_id}.")


__all__ = ["router"]
