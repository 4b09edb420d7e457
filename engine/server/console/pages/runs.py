"""The console's Runs page: runs newest first, filtered and paged in SQL by the engine.

Filters: tree, status, source id, creation day (from, until) and, for administrators, the
user who created the run (a plain user sees its own runs only, see
:mod:`engine.server.console.access`). The counts by status and the list refresh every five
seconds by htmx (the request carries ``HX-Request`` and gets only that part of the page).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import Accounts
from engine.auth.names import name_key
from engine.errors import BadRequest
from engine.server.console import filters
from engine.server.console.access import owner_filter
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleUser
from engine.server.paging import app_engine
from engine.statuses import RunStatus

router = APIRouter()
STATUSES = tuple(status.value for status in RunStatus)


def _creator(request: Request, name: str | None) -> str | None:
    """The id of the user named ``name`` (the creator filter); BadRequest if there is none."""
    if name is None:
        return None
    accounts: Accounts = request.app.state.accounts
    stored = accounts.users.by_key(name_key(name))
    if stored is None:
        raise BadRequest(field="creator", reason=f"no user is named {name!r}")
    return stored.id


@router.get("/runs")
async def runs_page(request: Request, user: ConsoleUser) -> Response:
    shown = {
        "tree": filters.text(request, "tree"),
        "status": filters.choice(request, "status", STATUSES),
        "source_id": filters.text(request, "source_id"),
        "from": request.query_params.get("from") or None,
        "until": request.query_params.get("until") or None,
        "creator": filters.text(request, "creator") if user.is_admin else None,
    }
    offset = filters.offset(request)
    engine = app_engine(request)

    def query() -> dict[str, Any]:
        created_by = owner_filter(user) or _creator(request, shown["creator"])
        common: dict[str, Any] = {
            "tree_name": shown["tree"],
            "source_id": shown["source_id"],
            "created_by": created_by,
            "created_from": filters.day(request, "from"),
            "created_until": filters.day(request, "until", end=True),
        }
        counts = engine.count_runs_by_status(**common)
        # The counts by status have every other filter: the total is theirs, no second count.
        total = counts.get(shown["status"] or "", 0) if shown["status"] else sum(counts.values())
        return {
            "counts": counts,
            "total": total,
            "runs": engine.list_runs(
                status=shown["status"], **common, limit=filters.PAGE_SIZE, offset=offset
            ),
        }

    found = await run_in_threadpool(query)
    context = {
        **found,
        "filters": shown,
        "statuses": STATUSES,
        "trees": sorted({tree.key.name for tree in engine.trees}),
        "offset": offset,
        "page_size": filters.PAGE_SIZE,
        "filtered": any(shown.values()),
    }
    template = "partials/runs_live.html" if request.headers.get("hx-request") else "runs.html"
    return render(request, template, context)


__all__ = ["STATUSES", "router"]
