"""What the Trees, Schedules, Instances and Health pages share: a page of a list read from the
query string, the pager under it, and the log line each console action leaves.

A list's page is ``offset`` in the query (``PAGE_SIZE`` items a page); the other filters stay
in the pager's links. A bad ``offset`` is a 400 page naming it, as the JSON API's paging is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from engine.auth import User
from engine.errors import BadRequest
from engine.server.limits import page_bounds

PAGE_SIZE = 50
logger = logging.getLogger("treeflow.console")


@dataclass(frozen=True)
class Pager:
    """Where a page sits in its list: items ``first`` to ``last`` of ``total``."""

    total: int
    offset: int
    limit: int
    params: Mapping[str, str]  # the list's filters, kept in the pager's links

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def previous(self) -> int | None:
        return None if self.offset == 0 else max(self.offset - self.limit, 0)

    @property
    def next(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def page_offset(request: Request) -> int:
    """The ``offset`` the query asks for (0 without one), checked as the API checks it."""
    raw = request.query_params.get("offset", "")
    if raw == "":
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise BadRequest(field="offset", reason=f"expected a whole number, not {raw!r}") from None
    cap = request.app.state.settings.max_page_size
    return page_bounds(min(PAGE_SIZE, cap), offset, max_limit=cap)[1]


def filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The query's values of ``names`` (blank ones left out), to show and to keep in links."""
    return {name: value for name in names if (value := request.query_params.get(name, "").strip())}


def pager(total: int, offset: int, params: Mapping[str, str]) -> Pager:
    return Pager(total=total, offset=offset, limit=PAGE_SIZE, params=dict(params))


def record_action(user: User, action: str, subject: str) -> None:
    """Log who did what from the console, where the engine keeps no actor of its own."""
    logger.info("console: %s %s by %s (%s)", action, subject, user.name, user.id)


__all__ = ["PAGE_SIZE", "Pager", "filters", "page_offset", "pager", "record_action"]
