"""The v2 handlers: treeflow's installed handlers (its node plugins) in the document's shape,
and ``GET /handlers/missing``, the handler ids trees use that no plugin provides.

A tree naming an unknown handler is refused when it is loaded (its file is listed in
``/healthz`` and by ``treeflow validate``), so the missing handlers are read from those
refusals: what a team takes stock of after copying its Kinetic exports in, before migrating.
Uploading, changing and deleting handlers (``POST``/``PUT``/``DELETE``) is not offered: a
handler is Python code, installed as a package (README, Writing a node plugin).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import ItemNotFound, Problem
from engine.server.auth import AnyUser
from engine.server.kinetic_v2.shapes import answer, handler_shape, includes, page, single
from engine.server.paging import app_engine

router = APIRouter()
_UNKNOWN = re.compile(r"unknown handler '([^']+)'")
Include = Annotated[str | None, Query(description="comma-separated: parameters, results")]


@router.get("/handlers", summary="listHandlers")
async def list_handlers(request: Request, _user: AnyUser, include: Include = None) -> Response:
    registry = app_engine(request).registry
    wanted = includes(include)
    handlers = [registry.get(definition_id) for definition_id in registry.ids]
    items = [handler_shape(handler, wanted) for handler in handlers if handler is not None]
    return page("handlers", items, total=len(items), limit=len(items), offset=0)


def missing(problems: Iterable[Problem], *, routines: bool) -> list[dict[str, object]]:
    """The unknown handler ids of refused tree files, with how many files and nodes use each:
    Kinetic's routine ids (``routine_...``) when ``routines``, the others otherwise."""
    nodes: Counter[str] = Counter()
    files: dict[str, set[str]] = {}
    for problem in problems:
        match = _UNKNOWN.search(problem.message)
        if match is not None and match.group(1).startswith("routine_") == routines:
            nodes[match.group(1)] += 1
            files.setdefault(match.group(1), set()).add(problem.file)
    return [
        {
            "definitionId": definition_id,
            "treeCount": len(files[definition_id]),
            "routineCount": 0,
            "totalNodeCount": count,
        }
        for definition_id, count in sorted(nodes.items())
    ]


@router.get("/handlers/missing", summary="listMissingHandlers")
async def list_missing_handlers(request: Request, _user: AnyUser) -> Response:
    found = missing(app_engine(request).tree_problems, routines=False)
    return answer({"missingHandlers": found})


@router.get("/handlers/{definition_id}", summary="retrieveHandler")
async def retrieve_handler(
    request: Request, _user: AnyUser, definition_id: str, include: Include = None
) -> Response:
    handler = app_engine(request).registry.get(definition_id)
    if handler is None:
        raise ItemNotFound(kind="handler", name=definition_id)
    return single("handler", handler_shape(handler, includes(include)))


__all__ = ["missing", "router"]
