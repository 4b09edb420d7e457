"""The console's Run page and the actions on a run.

The page shows a run's status, inputs and values, its picture (``runs show --graph``'s, drawn
inline as SVG, each node linking to its task below), its tasks with results, its triggers as a
timeline, its open deferrals with a form to complete or update each, its errors with their
resolutions, and its parent, Run Again and child runs.

Every action is confirmed on a page of its own before it is done, which needs no script: the
first POST (or the GET of the action's address) shows what will happen, with the values as
hidden fields, and only the confirmation's POST (``confirmed=yes``) calls the engine. Who did
it is recorded as the engine records it: ``cancel_run``'s ``by`` and ``resolve_error``'s
``resolved_by`` take the user's name, ``run_again``'s ``created_by`` the user's id (the new
run is theirs); a deferral's message gets ``(by NAME, in the console)`` added, as
createDeferred records no user.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.errors import BadRequest, GraphvizNotFound
from engine.records import Run, Task
from engine.results_xml import parse_results, write_results
from engine.server.console.access import visible_run
from engine.server.console.forms import read_page_form
from engine.server.console.rendering import inline_svg, render
from engine.server.console.sessions import ConsoleAdmin, ConsoleUser, console_base
from engine.server.forms import MAX_FIELDS
from engine.server.paging import Id, app_engine
from engine.statuses import RunStatus, TaskStatus
from engine.tree.model import Tree
from engine.tree.picture import render as draw
from engine.tree.picture import run_dot
from engine.tree.reads import results_read

router = APIRouter()
TaskId = Annotated[str, Path(min_length=1, max_length=32)]  # tasks.id's length
RESULT_ROWS = 3  # empty name/value rows a deferral's form offers beside those the tree reads
# The rows a deferral's form may send: what the form limit (MAX_FIELDS) leaves beside its
# other fields (the CSRF token, action, message, results XML, confirmed). The suggested rows
# are cut to leave room for the empty ones; further results go in the XML box.
MAX_RESULT_ROWS = (MAX_FIELDS - 5) // 2
TRIGGERS_SHOWN = 100
OPEN_STATUSES = (RunStatus.STARTED, RunStatus.FAILED, RunStatus.STAGED)


def _anchor(task: Task) -> str:
    return f"task-{task.id}"


def picture(tree: Tree, run: Run) -> Markup | None:
    """The run's picture as inline SVG (None when Graphviz's dot is not installed)."""
    latest = {task.name: f"#{_anchor(task)}" for task in run.tasks}
    try:
        return inline_svg(draw(run_dot(tree, run, links=latest), "svg"))
    except GraphvizNotFound:
        return None


def suggested_results(tree: Tree, task: Task) -> list[tuple[str, str]]:
    """The results the tree's conditions read of ``task``'s node, each with the first constant
    it is compared with: the deferral form's first rows."""
    found: dict[str, str] = {}
    for read in results_read(tree, task.name):
        found.setdefault(read.result, read.compared_with or "")
    return list(found.items())[: MAX_RESULT_ROWS - RESULT_ROWS]  # the rest: the XML box


@router.get("/runs/{run_id}")
async def run_page(request: Request, user: ConsoleUser, run_id: Id) -> Response:
    engine = app_engine(request)

    def read() -> dict[str, Any]:
        run = visible_run(engine, user, run_id)
        tree = engine.tree_of_run(run)
        total, triggers = engine.list_triggers(run_id=run_id, limit=TRIGGERS_SHOWN)
        deferred = [
            (task, suggested_results(tree, task))
            for task in run.tasks
            if task.status is TaskStatus.DEFERRED and task.token
        ]
        return {
            "run": run,
            "picture": picture(tree, run),
            "triggers": list(reversed(triggers)),
            "triggers_total": total,
            "deferred": deferred,
            "result_rows": RESULT_ROWS,
            "is_open": run.status in OPEN_STATUSES,
            "done": request.query_params.get("done"),
        }

    return render(request, "run.html", await run_in_threadpool(read))


@router.get("/runs/{run_id}/changed")
async def run_changed(request: Request, user: ConsoleUser, run_id: Id) -> Response:
    """The Run page's poll: 204 while the run is as the page shows it (``since``, the run's
    ``updated_at`` then), else ``HX-Refresh`` so that htmx reloads the whole page."""
    run = await run_in_threadpool(visible_run, app_engine(request), user, run_id)
    if request.query_params.get("since") == repr(run.updated_at):
        return Response(status_code=204)
    return Response(status_code=200, headers={"HX-Refresh": "true"})


def _results(fields: dict[str, str], max_bytes: int) -> str | None:
    """Results XML from the form: the XML box as is, else the name/value rows filled in. The
    XML is read here, as ``create_deferred`` reads it, so that XML it would refuse is refused
    before the confirmation page, not after it."""
    xml = (fields.get("results_xml") or "").strip()
    rows = {}
    for index in range(MAX_RESULT_ROWS):
        name = (fields.get(f"name_{index}") or "").strip()
        if name:
            rows[name] = fields.get(f"value_{index}", "")
    if xml and rows:
        raise BadRequest(field="results", reason="give results XML or the rows, not both")
    parse_results(xml, max_bytes=max_bytes)
    return xml or (write_results(rows) if rows else None)


_ROW_FIELDS = tuple(f"{kind}_{i}" for i in range(MAX_RESULT_ROWS) for kind in ("name", "value"))
_DEFERRAL_FIELDS = ("action", "message", "results_xml", "confirmed", *_ROW_FIELDS)


@router.post("/runs/{run_id}/deferrals/{task_id}")
async def complete_deferral(
    request: Request, user: ConsoleUser, run_id: Id, task_id: TaskId
) -> Response:
    fields = await read_page_form(request, (), _DEFERRAL_FIELDS)
    action = fields.get("action") or "Complete"
    if action not in ("Complete", "Update"):
        raise BadRequest(field="action", reason=f"{action!r} is not Complete or Update")
    engine = app_engine(request)
    results = _results(fields, engine.max_results_bytes)
    run = await run_in_threadpool(visible_run, engine, user, run_id)
    task = next((t for t in run.tasks if t.id == task_id and t.token), None)
    if task is None or task.status is not TaskStatus.DEFERRED:
        raise BadRequest(field="task", reason=f"run {run_id} has no deferred task {task_id!r}")
    message = fields.get("message") or None
    if fields.get("confirmed") != "yes":
        return render(
            request,
            "confirm_deferral.html",
            {"run": run, "task": task, "action": action, "results": results, "message": message},
        )
    signed = f"{message} " if message else ""
    await run_in_threadpool(
        lambda: engine.create_deferred(
            token=task.token or "",
            action=action,
            results=results,
            message=f"{signed}(by {user.name}, in the console)",
        )
    )
    return _back(request, run_id, "deferral")


def _back(request: Request, run_id: int, done: str) -> Response:
    return RedirectResponse(f"{console_base(request)}/runs/{run_id}?done={done}", status_code=303)


@router.get("/runs/{run_id}/cancel")
async def confirm_cancel(request: Request, user: ConsoleAdmin, run_id: Id) -> Response:
    run = await run_in_threadpool(visible_run, app_engine(request), user, run_id)
    return render(request, "confirm_cancel.html", {"run": run})


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, user: ConsoleAdmin, run_id: Id) -> Response:
    fields = await read_page_form(request, (), ("reason", "confirmed"))
    engine = app_engine(request)
    if fields.get("confirmed") != "yes":
        run = await run_in_threadpool(visible_run, engine, user, run_id)
        return render(request, "confirm_cancel.html", {"run": run})
    reason = fields.get("reason") or None
    await run_in_threadpool(lambda: engine.cancel_run(run_id, reason, by=user.name))
    return _back(request, run_id, "cancel")


@router.get("/runs/{run_id}/run-again")
async def run_again_form(request: Request, user: ConsoleAdmin, run_id: Id) -> Response:
    run = await run_in_threadpool(visible_run, app_engine(request), user, run_id)
    return render(request, "run_again.html", {"run": run})


@router.post("/runs/{run_id}/run-again")
async def run_again(request: Request, user: ConsoleAdmin, run_id: Id) -> Response:
    engine = app_engine(request)
    run = await run_in_threadpool(visible_run, engine, user, run_id)
    names = [f"input_{name}" for name in run.inputs]
    fields = await read_page_form(request, ("version",), (*names, "confirmed"))
    version = fields["version"]
    if version not in ("same", "current"):
        raise BadRequest(field="version", reason=f"{version!r} is not same or current")
    inputs = {name: fields.get(f"input_{name}", "") for name in run.inputs}
    changed = {name: value for name, value in inputs.items() if value != str(run.inputs[name])}
    trigger = await run_in_threadpool(
        lambda: engine.run_again(run_id, inputs=changed, version=version, created_by=user.id)
    )
    return RedirectResponse(
        f"{console_base(request)}/runs/{trigger.run_id}?done=run-again", status_code=303
    )


__all__ = ["picture", "router", "suggested_results"]
