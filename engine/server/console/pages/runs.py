"""The console's Runs page: runs, newest first, filtered and paged in SQL by the engine."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleUser
from engine.server.paging import app_engine

router = APIRouter()
PAGE_SIZE = 50


@router.get("/runs")
async def runs_page(request: Request, user: ConsoleUser) -> Response:
    engine = app_engine(request)
    if user.is_admin:
        found = await run_in_threadpool(lambda: engine.list_runs(limit=PAGE_SIZE))
    else:
        found = []
    return render(request, "runs.html", {"runs": found})


__all__ = ["router"]
