"""The console's Schedules pages (administrators, as the ``/api/tasks`` routes are): every
schedule with its next firings, one schedule with its history, and its actions.

- ``GET /schedules?offset=N``: the list in the order they were created, paged.
- ``GET /schedules/{id}?offset=N``: what it starts and when, the next ``UPCOMING`` firings,
  and its history newest first (``Schedules.history``), paged.
- ``GET /schedules/{id}/confirm?action=enable|disable|run-now``: the confirmation, a page of
  its own with the form that does it (no script needed).
- ``POST /schedules/{id}/enable``, ``/disable``, ``/run-now`` (CSRF-checked, as every console
  POST): ``Schedules.update(enabled=...)`` or ``Schedules.run_now``, then back to the schedule
  with what was done. The schedule tables keep no actor, so the console logs who did it
  (``treeflow.console``); a run started now carries ``manual: true`` in its source data.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.errors import BadRequest
from engine.records import Schedule
from engine.schedule.when import describe
from engine.server.console import filters
from engine.server.console.filters import PAGE_SIZE
from engine.server.console.forms import read_page_form
from engine.server.console.pages.listing import pager, record_action
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleAdmin, console_base
from engine.server.paging import Id, app_engine

router = APIRouter()
UPCOMING = 5  # next firings shown for one schedule (3 in the list)
# What each action's confirmation says and its button reads.
ACTIONS = {
    "enable": (
        "Enable",
        "It fires again from its next slot; slots missed while disabled stay missed.",
    ),
    "disable": ("Disable", "It stops firing until enabled again; runs already started go on."),
    "run-now": (
        "Run now",
        "It fires once now, outside its slots, enabled or not; the firing goes in its history.",
    ),
}


def target_of(schedule: Schedule) -> str:
    """What a firing starts: a tree (its key) or an instance of a process."""
    if schedule.process:
        over = f", from {schedule.instance}" if schedule.instance else ""
        return f"an instance of {schedule.process}{over}"
    return f"{schedule.source_name} :: {schedule.source_group} :: {schedule.tree_name}"


def _action(action: str) -> tuple[str, str]:
    if action not in ACTIONS:
        raise BadRequest(
            field="action", reason=f"expected one of {sorted(ACTIONS)}, not {action!r}"
        )
    return ACTIONS[action]


@router.get("/schedules")
async def schedules_page(request: Request, user: ConsoleAdmin) -> Response:
    schedules = app_engine(request).schedules
    offset = filters.offset(request)

    def read() -> dict[str, object]:
        found = schedules.list(limit=PAGE_SIZE, offset=offset)
        return {
            "schedules": [
                (s, describe(s.when), target_of(s), schedules.next_fire_times(s, 3)) for s in found
            ],
            "pager": pager(schedules.count(), offset, {}),
        }

    return render(request, "schedules.html", await run_in_threadpool(read))


@router.get("/schedules/{schedule_id}")
async def schedule_page(
    request: Request,
    schedule_id: Id,
    user: ConsoleAdmin,
    done: str | None = Query(None, max_length=20),
    run_id: int | None = Query(None, ge=1),
) -> Response:
    schedules = app_engine(request).schedules
    offset = filters.offset(request)

    def read() -> dict[str, object]:
        schedule = schedules.get(schedule_id)
        return {
            "schedule": schedule,
            "when": describe(schedule.when),
            "target": target_of(schedule),
            "upcoming": schedules.next_fire_times(schedule, UPCOMING),
            "history": schedules.history(schedule_id, limit=PAGE_SIZE, offset=offset),
            "pager": pager(schedules.count_history(schedule_id), offset, {}),
            "done": done if done in ACTIONS else None,
            "started_run": run_id,
        }

    return render(request, "schedules_schedule.html", await run_in_threadpool(read))


@router.get("/schedules/{schedule_id}/confirm")
async def confirm_page(
    request: Request, schedule_id: Id, user: ConsoleAdmin, action: str = Query(max_length=20)
) -> Response:
    label, consequence = _action(action)
    schedule = await run_in_threadpool(app_engine(request).schedules.get, schedule_id)
    context = {
        "schedule": schedule,
        "action": action,
        "label": label,
        "consequence": consequence,
        "target": target_of(schedule),
    }
    return render(request, "schedules_confirm.html", context)


@router.post("/schedules/{schedule_id}/{action}")
async def schedule_action(
    request: Request, schedule_id: Id, action: str, user: ConsoleAdmin
) -> Response:
    _action(action)
    await read_page_form(request, required=())
    schedules = app_engine(request).schedules
    where = f"{console_base(request)}/schedules/{schedule_id}?done={action}"
    if action == "run-now":
        firing = await run_in_threadpool(schedules.run_now, schedule_id)
        if firing.run_id is not None:
            where += f"&run_id={firing.run_id}"
    else:
        enabled = action == "enable"
        await run_in_threadpool(lambda: schedules.update(schedule_id, enabled=enabled))
    record_action(user, action, f"schedule {schedule_id}")
    return RedirectResponse(where, status_code=303)


__all__ = ["ACTIONS", "router", "target_of"]
