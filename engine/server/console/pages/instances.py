"""The console's Instances pages (the Kianda side): instances by process with their fields and
versions, and the processes they belong to.

- ``GET /instances?process=...&offset=N``: instances by process, newest first, paged
  (``Engine.list_instances``). A plain user sees only the instances it created, as the
  instance API limits it; an administrator sees every one, and the processes above them.
- ``GET /instances/{name}``: one instance: its fields (text and value), its version (what
  optimistic writes compare), its tree version and its run. Another user's instance is a 404
  for a plain user, exactly like a missing one, so its existence is not told.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.server.console import filters
from engine.server.console.access import owner_filter
from engine.server.console.filters import PAGE_SIZE
from engine.server.console.pages.listing import pager
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleUser
from engine.server.instances import Name
from engine.server.paging import app_engine

router = APIRouter()


@router.get("/instances")
async def instances_page(request: Request, user: ConsoleUser) -> Response:
    engine = app_engine(request)
    process = filters.text(request, "process")
    shown = {"process": process} if process else {}
    offset = filters.offset(request)

    def read() -> dict[str, object]:
        total, found = engine.list_instances(
            process=process,
            created_by=owner_filter(user),
            limit=PAGE_SIZE,
            offset=offset,
        )
        return {
            "instances": found,
            "processes": engine.list_processes() if user.is_admin else [],
            "filters": shown,
            "pager": pager(total, offset, shown),
        }

    return render(request, "instances.html", await run_in_threadpool(read))


@router.get("/instances/{name}")
async def instance_page(request: Request, name: Name, user: ConsoleUser) -> Response:
    engine = app_engine(request)
    instance = await run_in_threadpool(
        lambda: engine.get_instance(name, created_by=owner_filter(user))
    )
    return render(request, "instances_instance.html", {"instance": instance})


__all__ = ["router"]
