"""What the Trees, Schedules, Instances and Health pages share: the pager under a list, and
the log line each console action leaves where the engine records no actor.

A list's page is ``offset`` in the query (:mod:`engine.server.console.filters` reads and
checks it, ``PAGE_SIZE`` items a page); the list's other filters stay in the pager's links.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from engine.auth import User
from engine.server.console.filters import PAGE_SIZE

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


def pager(total: int, offset: int, params: Mapping[str, str | None]) -> Pager:
    kept = {name: value for name, value in params.items() if value}
    return Pager(total=total, offset=offset, limit=PAGE_SIZE, params=kept)


def record_action(user: User, action: str, subject: str) -> None:
    """Log who did what from the console, where the engine keeps no actor of its own."""
    logger.info("console: %s %s by %s (%s)", action, subject, user.name, user.id)


__all__ = ["Pager", "pager", "record_action"]
