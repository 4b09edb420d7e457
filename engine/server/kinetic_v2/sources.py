"""The v2 sources: the source names treeflow's trees use, in the document's shape.

Kinetic Task configures a source (an adapter and its properties) before trees may use it;
treeflow has no adapters, and a source is simply the first part of a tree's title. So the list
is derived from the loaded trees, every source ``Active`` and of type ``treeflow``, and
creating, changing or deleting a source is not offered (it follows from the trees).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import ItemNotFound
from engine.server.auth import AnyUser
from engine.server.kinetic_v2.runs import paged
from engine.server.kinetic_v2.shapes import SYSTEM_NAME, page, single
from engine.server.paging import app_engine

router = APIRouter()
Include = Annotated[str | None, Query(description="comma-separated: details, ...")]


def source_shape(name: str, trees: int) -> dict[str, object]:
    return {
        "name": name,
        "status": "Active",
        "type": SYSTEM_NAME,
        "properties": {"trees": trees},
    }


def _tree_counts(request: Request) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tree in app_engine(request).trees:
        counts[tree.key.source_name] = counts.get(tree.key.source_name, 0) + 1
    return counts


@router.get("/sources", summary="listSources")
async def list_sources(
    request: Request,
    _user: AnyUser,
    include: Include = None,
    limit: int = 100,
    offset: int = 0,
) -> Response:
    limit, offset = paged(limit, offset)
    counts = _tree_counts(request)
    names = sorted(counts)
    items = [source_shape(name, counts[name]) for name in names[offset : offset + limit]]
    return page("sourceRoots", items, total=len(names), limit=limit, offset=offset)


@router.get("/sources/{name}", summary="retrieveSource")
async def retrieve_source(
    request: Request, _user: AnyUser, name: str, include: Include = None
) -> Response:
    counts = _tree_counts(request)
    if name not in counts:
        raise ItemNotFound(kind="source", name=name)
    return single("source", source_shape(name, counts[name]))


__all__ = ["router"]
