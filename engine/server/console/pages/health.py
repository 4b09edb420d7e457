"""The console's Health page (administrators): the backlog, the workers' claims and leases,
which engine processes closed the latest triggers, recent errors, and who runs the scheduler,
from ``Engine.health`` (the backlog is counted as ``/metrics`` counts it).

- ``GET /health``: the page; its live part refreshes itself every ``REFRESH_SECONDS`` (htmx).
- ``GET /health/live``: that part alone, what the refresh swaps in.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleAdmin
from engine.server.paging import app_engine

router = APIRouter()
REFRESH_SECONDS = 5


async def _context(request: Request) -> dict[str, object]:
    engine = app_engine(request)
    health = await run_in_threadpool(engine.health)
    return {
        "health": health,
        "refresh_seconds": REFRESH_SECONDS,
        "engine_name": engine.name,
    }


@router.get("/health")
async def health_page(request: Request, user: ConsoleAdmin) -> Response:
    return render(request, "health.html", await _context(request))


@router.get("/health/live")
async def health_live(request: Request, user: ConsoleAdmin) -> Response:
    return render(request, "health_live.html", await _context(request))


__all__ = ["REFRESH_SECONDS", "router"]
