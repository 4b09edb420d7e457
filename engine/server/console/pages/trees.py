"""The console's Trees pages (administrators): every tree at its latest version with its runs
by status and the runs still in flight on an older version; a version with its picture, the
tree's other versions and those runs.

- ``GET /trees?status=Active|Inactive&name=...&offset=N``: the list, by source name, group and
  name, paged (``Engine.list_tree_overviews``: counts in SQL, for the page's trees only).
- ``GET /trees/versions/{id}?offset=N``: one stored version; its picture drawn as
  ``treeflow graph`` draws it, inline, and the in-flight runs on older versions of the tree.
- ``GET /trees/versions/{id}/picture.svg``: that picture alone, to open or save.

Runs are not trees' data alone (a plain user sees only the runs it started), so these pages
are for administrators, as the process and schedule APIs are.
"""

from __future__ import annotations

from fastapi import APIRouter
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import GraphvizNotFound
from engine.facade.trees import TREE_STATUSES
from engine.server.console import filters
from engine.server.console.filters import PAGE_SIZE
from engine.server.console.pages.listing import pager
from engine.server.console.rendering import inline_svg, render
from engine.server.console.sessions import ConsoleAdmin
from engine.server.paging import Id, app_engine
from engine.statuses import RunStatus

router = APIRouter()
RUN_STATUSES = tuple(status.value for status in RunStatus)


@router.get("/trees")
async def trees_page(request: Request, user: ConsoleAdmin) -> Response:
    engine = app_engine(request)
    shown = {
        "status": filters.choice(request, "status", TREE_STATUSES),
        "name": filters.text(request, "name"),
    }
    offset = filters.offset(request)
    total, overviews = await run_in_threadpool(
        lambda: engine.list_tree_overviews(
            status=shown.get("status"), name=shown.get("name"), limit=PAGE_SIZE, offset=offset
        )
    )
    stale = await run_in_threadpool(engine.count_stale_runs)
    context = {
        "overviews": overviews,
        "filters": {name: value for name, value in shown.items() if value},
        "statuses": TREE_STATUSES,
        "run_statuses": RUN_STATUSES,
        "pager": pager(total, offset, shown),
        "stale_total": stale,
    }
    return render(request, "trees.html", context)


@router.get("/trees/versions/{version_id}")
async def tree_version_page(request: Request, version_id: Id, user: ConsoleAdmin) -> Response:
    engine = app_engine(request)
    offset = filters.offset(request)

    def read() -> dict[str, object]:
        version = engine.get_tree_version(version_id)
        try:
            picture: Markup | None = inline_svg(engine.tree_version_picture(version_id))
        except GraphvizNotFound:
            picture = None
        return {
            "version": version,
            "versions": engine.tree_versions(version.key),
            "picture": picture,
            "stale_runs": engine.list_stale_runs(version.key, limit=PAGE_SIZE, offset=offset),
            "pager": pager(engine.count_stale_runs(version.key), offset, {}),
        }

    return render(request, "trees_version.html", await run_in_threadpool(read))


@router.get("/trees/versions/{version_id}/picture.svg")
async def tree_version_picture(request: Request, version_id: Id, user: ConsoleAdmin) -> Response:
    engine = app_engine(request)
    svg = await run_in_threadpool(engine.tree_version_picture, version_id)
    headers = {"Content-Disposition": f'inline; filename="tree-version-{version_id}.svg"'}
    return Response(svg, media_type="image/svg+xml", headers=headers)


__all__ = ["router"]
