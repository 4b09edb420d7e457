"""The console's Deferred inbox: tasks waiting for a person, each with the form to complete it.

An administrator sees every deferred task; a plain user those of its own runs (see
:mod:`engine.server.console.access`). Newest first, by tree, paged in SQL. The form posts to
the Run page's deferral action, which confirms before it sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.server.console import filters
from engine.server.console.access import owner_filter
from engine.server.console.pages.run import RESULT_ROWS, suggested_results
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleUser
from engine.server.paging import app_engine

router = APIRouter()


@router.get("/deferred")
async def deferred_page(request: Request, user: ConsoleUser) -> Response:
    tree = filters.text(request, "tree")
    offset = filters.offset(request)
    engine = app_engine(request)
    query: dict[str, Any] = {"tree_name": tree, "created_by": owner_filter(user)}

    def read() -> dict[str, Any]:
        total = engine.count_deferred_tasks(**query)
        found = engine.list_deferred_tasks(**query, limit=filters.PAGE_SIZE, offset=offset)
        rows = [
            (run, task, suggested_results(engine.tree_of_run(run), task)) for run, task in found
        ]
        return {"total": total, "rows": rows}

    context = {
        **await run_in_threadpool(read),
        "tree": tree,
        "trees": sorted({t.key.name for t in engine.trees}),
        "offset": offset,
        "page_size": filters.PAGE_SIZE,
        "result_rows": RESULT_ROWS,
    }
    return render(request, "deferred.html", context)


__all__ = ["router"]
