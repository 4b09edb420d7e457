"""The console's Errors inbox: errors across runs, filtered and paged in SQL, resolved in place
one at a time or in bulk.

For administrators, as resolving is in the JSON API. The list defaults to the Active errors.
A resolution is confirmed on a page of its own (the action, limited to those the error's type
allows, and a message), then accepted through ``Engine.resolve_error`` with the user's name as
``resolved_by``; a bulk resolution applies one action to every error ticked, and reports
each one the engine refused (an action its type does not allow, one already resolved) by id
and reason, the others being accepted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.errors import BadRequest, TreeflowError
from engine.records import RunError
from engine.server.console import filters
from engine.server.console.csrf import CSRF_FIELD, MAX_FORM_FIELDS
from engine.server.console.forms import read_page_form
from engine.server.console.pages.sign_in import safe_next
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleAdmin
from engine.server.forms import urlencoded_pairs
from engine.server.inspection import MAX_ERROR_ID
from engine.server.paging import MAX_ID, app_engine
from engine.statuses import ErrorStatus, ResolutionAction, allowed_resolutions

router = APIRouter()
ErrorId = Annotated[str, Path(min_length=1, max_length=MAX_ERROR_ID)]
STATUSES = tuple(status.value for status in ErrorStatus)
ACTIONS = tuple(action.value for action in ResolutionAction)
MAX_BULK = 200


def actions_for(error: RunError) -> list[str]:
    return [a.value for a in allowed_resolutions(error.type, at_node=error.task_id is not None)]


@router.get("/errors")
async def errors_page(request: Request, user: ConsoleAdmin) -> Response:
    status = filters.choice(request, "status", (*STATUSES, "any"))
    run_id = filters.number(request, "run", maximum=MAX_ID, what="a run id")
    shown = {
        "status": status or ErrorStatus.ACTIVE.value,
        "type": filters.text(request, "type"),
        "run": None if run_id is None else str(run_id),
    }
    offset = filters.offset(request)
    engine = app_engine(request)
    query: dict[str, Any] = {
        "status": None if shown["status"] == "any" else shown["status"],
        "error_type": shown["type"],
        "run_id": run_id,
    }

    def read() -> tuple[int, list[RunError]]:
        total = engine.count_errors(**query)
        return total, engine.list_errors(**query, limit=filters.PAGE_SIZE, offset=offset)

    total, found = await run_in_threadpool(read)
    actions = sorted({action for error in found for action in actions_for(error)})
    context = {
        "errors": [(error, actions_for(error)) for error in found],
        "total": total,
        "filters": shown,
        "statuses": (*STATUSES, "any"),
        "offset": offset,
        "page_size": filters.PAGE_SIZE,
        "bulk_actions": actions,
        "done": request.query_params.get("done"),
    }
    return render(request, "errors.html", context)


@router.get("/errors/{error_id}/resolve")
async def confirm_resolve(request: Request, user: ConsoleAdmin, error_id: ErrorId) -> Response:
    error = await run_in_threadpool(app_engine(request).get_error, error_id)
    back = safe_next(request, request.query_params.get("next"))
    context = {"error": error, "actions": actions_for(error), "next": back}
    if request.headers.get("hx-request"):  # in place: the inbox's row becomes the form
        return render(request, "partials/resolve_row.html", context)
    return render(request, "confirm_resolve.html", context)


@router.post("/errors/{error_id}/resolve")
async def resolve(request: Request, user: ConsoleAdmin, error_id: ErrorId) -> Response:
    fields = await read_page_form(request, ("action",), ("message", "next"))
    engine = app_engine(request)
    await run_in_threadpool(
        lambda: engine.resolve_error(
            error_id, fields["action"], message=fields.get("message") or None, resolved_by=user.name
        )
    )
    back = safe_next(request, fields.get("next"))
    if request.headers.get("hx-request"):  # in place: the row, now with its resolution
        error = await run_in_threadpool(engine.get_error, error_id)
        row = {"error": error, "actions": actions_for(error), "back": back}
        return render(request, "partials/error_row.html", row)
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}done=resolve", status_code=303)


@router.post("/errors/resolve")
async def resolve_many(request: Request, user: ConsoleAdmin) -> Response:
    """Bulk: ``error`` repeated, one per error ticked, with one ``action`` and ``message``."""
    pairs = urlencoded_pairs(await request.body(), max_fields=MAX_FORM_FIELDS)
    ids = [value for name, value in pairs if name == "error"]
    fields = {name: value for name, value in pairs if name not in ("error", CSRF_FIELD)}
    unknown = set(fields) - {"action", "message", "confirmed"}
    if unknown:
        raise BadRequest(field="form", reason=f"unknown parameter {', '.join(sorted(unknown))}")
    if not ids:
        raise BadRequest(field="error", reason="no error was ticked")
    if len(ids) > MAX_BULK:
        raise BadRequest(field="error", reason=f"at most {MAX_BULK} errors at once")
    action = fields.get("action", "")
    if action not in ACTIONS:  # whether each error's type allows it is the engine's to say
        raise BadRequest(field="action", reason=f"{action!r} is not one of {', '.join(ACTIONS)}")
    message = fields.get("message") or None
    engine = app_engine(request)
    if fields.get("confirmed") != "yes":
        found = await run_in_threadpool(lambda: [engine.get_error(i) for i in ids])
        context: dict[str, Any] = {"errors": found, "action": action, "message": message}
        return render(request, "confirm_resolve_many.html", context)

    def apply() -> list[tuple[str, str]]:
        refused = []
        for error_id in ids:
            try:
                engine.resolve_error(error_id, action, message=message, resolved_by=user.name)
            except TreeflowError as exc:
                refused.append((error_id, str(exc)))
        return refused

    refused = await run_in_threadpool(apply)
    outcome = {"accepted": len(ids) - len(refused), "refused": refused, "action": action}
    return render(request, "resolved_many.html", outcome)


__all__ = ["actions_for", "router"]
