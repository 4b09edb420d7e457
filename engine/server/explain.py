"""``GET /api/runs/{id}/explain``: what a run waits for (``Engine.explain``), as JSON.

Guarded like the other ``/api/runs`` routes (``engine.server.inspection``): a bearer token of
the ``admin`` role, a plain user's token refused with 403, an unknown run 404. The body is the
explanation: the run's status, a one-line summary, each open item (``kind``, ``node``,
``loop_index``, ``waits_for`` and what is ``missing``; ``token``, ``due_at`` or
``child_run_id`` where they fit) and the same for each open routine run it called.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine.records import Explanation, Waiting
from engine.server.auth import caller
from engine.server.inspection import ADMIN_ROLES
from engine.server.json_bodies import StrictJSONRoute
from engine.server.paging import Id, app_engine
from engine.server.read_models import ErrorBody


class WaitingOut(BaseModel):
    """One open thing of a run and what it waits for."""

    kind: str = Field(description="deferral, wait, routine call, join, junction, loop tail, ...")
    node: str
    loop_index: str
    waits_for: str = Field(description="what it waits for, as a sentence")
    task_id: str | None
    token: str | None = Field(description="a deferral's or wait's token")
    due_at: str | None = Field(description="a wait's timer, ISO 8601 UTC")
    child_run_id: int | None = Field(description="a routine call's child run")
    missing: list[str] = Field(description="what has not happened yet, each with how it stands")

    @classmethod
    def of(cls, item: Waiting) -> WaitingOut:
        return cls(
            kind=item.kind,
            node=item.node,
            loop_index=item.loop_index,
            waits_for=item.waits_for,
            task_id=item.task_id,
            token=item.token,
            due_at=item.due_at,
            child_run_id=item.child_run_id,
            missing=list(item.missing),
        )


class ExplanationOut(BaseModel):
    """What a run waits for, with its open routine runs."""

    run_id: int
    status: str
    summary: str
    waiting: list[WaitingOut]
    children: list[ExplanationOut]

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        return cls(
            run_id=explanation.run_id,
            status=explanation.status,
            summary=explanation.summary,
            waiting=[WaitingOut.of(item) for item in explanation.waiting],
            children=[cls.of(child) for child in explanation.children],
        )


_admin = caller(ADMIN_ROLES)
router = APIRouter(
    prefix="/api",
    tags=["inspection"],
    route_class=StrictJSONRoute,
    dependencies=[Depends(_admin)],
    responses={
        401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
        403: {"model": ErrorBody, "description": "The token's user is not an administrator"},
    },
)


@router.get(
    "/runs/{run_id}/explain",
    summary="What a run waits for: each open deferral, wait, join, junction, loop tail, call",
    response_model=ExplanationOut,
    responses={404: {"model": ErrorBody, "description": "No such id"}},
)
async def explain_run(request: Request, run_id: Id) -> ExplanationOut:
    explanation = await run_in_threadpool(app_engine(request).explain, run_id)
    return ExplanationOut.of(explanation)


__all__ = ["ExplanationOut", "WaitingOut", "router"]
