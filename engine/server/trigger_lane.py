"""The trigger routes' own lane: a ``POST`` to createStart or createDeferred skips the router.

createStart is the call a busy installation makes most, and FastAPI's way to it (the router
matching the path against every route, dependency solving, the route's wrappers and exit
stack) cost about as much of the event loop as the route's own work. :class:`TriggerLane` is
an ASGI middleware that looks the path up in a dict and calls the same caller dependency and
the same endpoint function the FastAPI route declares (``engine.server.trigger_api``), so the
behaviour is the route's: authentication, simulation headers, the form's checks, the
``Idempotency-Key``, the response formats. It sits inside ``BodyLimit`` (the size and slow-body
limits apply as to any route) and answers errors through the app's error map as the app's
exception handlers would; an unexpected error goes on to the outer server-error middleware,
which logs it and answers 500, as for any route. Other methods on those paths (a ``GET``
answered 405, say) and every other path go to the router; the FastAPI routes stay registered,
so ``/openapi.json`` still documents the forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.auth import User
from engine.errors import TreeflowError
from engine.server.errors import DATABASE_ERRORS
from engine.server.limits import ErrorRenderer

# What the app's exception handlers answer without re-raising; anything else is unexpected.
ANSWERED: tuple[type[BaseException], ...] = (TreeflowError, *DATABASE_ERRORS)


@dataclass(frozen=True)
class LaneRoute:
    """One route of the lane: its caller dependency and its endpoint, as FastAPI has them."""

    caller: Callable[[Request], Awaitable[User]]
    endpoint: Callable[[Request, User], Awaitable[Response]]


class TriggerLane:
    """Answer ``POST`` to ``routes`` (exact paths) directly; pass everything else to ``app``."""

    def __init__(
        self, app: ASGIApp, *, routes: Mapping[str, LaneRoute], render: ErrorRenderer
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request, await route.caller(request))
        except ANSWERED as exc:
            response = self.render(request, exc)
        await response(scope, receive, send)


__all__ = ["ANSWERED", "LaneRoute", "TriggerLane"]
