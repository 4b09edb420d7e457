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

from engine.auth import User
from engine.server.console.pages.listing import PAGE_SIZE, filters, page_offset, pager
from engine.server.console.rendering import render
from engine.server.console.sessions import ConsoleUser
from engine.server.instances import Name
from engine.server.paging import app_engine

router = APIRouter()


def _creator(user: User) -> str | None:
    """Whose instances ``user`` may see: its own, or (an administrator) everyone's."""
    return None if user.is_admin else user.id


@router.get("/instances")
async def instances_page(request: Request, user: ConsoleUser) -> Response:
    engine = app_engine(request)
    shown = filters(request, ("process",))
    offset = page_offset(request)

    def read() -> dict[str, object]:
        total, found = engine.list_instances(
            process=shown.get("process"),
            created_by=_creator(user),
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
    instance = await run_in_threadpool(lambda: engine.get_instance(name, created_by=_creator(user)))
    return render(request, "instances_instance.html", {"instance": instance})


__all__ = ["router"]
