"""What the JSON routes share: the engine behind the app, ids in paths, and paged lists.

Lists are newest first and paged with ``limit`` (up to the server's cap) and ``offset``; each
page names the path of the next one with the caller's filters kept, so a client follows
``next`` without rebuilding its query.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Path, Query, Request

from engine.engine import Engine
from engine.server.limits import page_bounds

MAX_ID = 2**31 - 1  # ids are INTEGER columns: the largest PostgreSQL holds

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int | None, Query(description="items per page: 1 to the cap (default 50)")]
Offset = Annotated[int | None, Query(description="items to skip (default 0)")]


def app_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def page_of(request: Request, limit: int | None, offset: int | None) -> tuple[int, int]:
    """The ``(limit, offset)`` asked for, checked against the server's page cap."""
    return page_bounds(limit, offset, max_limit=request.app.state.settings.max_page_size)


def next_page(request: Request, *, total: int, limit: int, offset: int) -> str | None:
    """The path and query of the page after this one, the filters kept; None on the last."""
    if offset + limit >= total:
        return None
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
    query += [("limit", str(limit)), ("offset", str(offset + limit))]
    return f"{request.url.path}?{urlencode(query)}"
