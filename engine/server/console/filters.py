"""Filters of the console's lists, read from the query string and checked before any query.

A bad value is a :class:`~engine.errors.BadRequest` naming the field (a 400 page); an empty
field is no filter, as in an HTML form. Dates are days in UTC (``YYYY-MM-DD``): ``from`` is
inclusive, ``until`` includes the whole day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request

from engine import inputs
from engine.errors import BadRequest

PAGE_SIZE = 50
MAX_OFFSET = 10_000_000


def text(request: Request, name: str) -> str | None:
    return inputs.optional(name, request.query_params.get(name) or None)


def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise BadRequest(field=name, reason=f"{value!r} is not one of {', '.join(allowed)}")
    return value


def day(request: Request, name: str, *, end: bool = False) -> float | None:
    """The start of the day ``name`` gives, in UTC seconds (with ``end``: of the day after)."""
    value = request.query_params.get(name) or None
    if value is None:
        return None
    try:
        moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        return (moment + timedelta(days=1 if end else 0)).timestamp()
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        raise BadRequest(field=name, reason=f"{value!r} is not a date (YYYY-MM-DD)") from None


def number(request: Request, name: str, *, maximum: int, what: str) -> int | None:
    """A whole number of ASCII digits up to ``maximum`` (``what`` names it in the refusal):
    ``str.isdigit`` alone accepts "²", which ``int`` refuses, and a number past a column's
    range would reach the database."""
    value = request.query_params.get(name) or None
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > maximum:
        raise BadRequest(field=name, reason=f"{value!r} is not {what}")
    return int(value)


def offset(request: Request) -> int:
    return number(request, "offset", maximum=MAX_OFFSET, what="a number of items to skip") or 0


__all__ = ["MAX_OFFSET", "PAGE_SIZE", "choice", "day", "number", "offset", "text"]
