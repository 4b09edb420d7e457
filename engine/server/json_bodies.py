"""JSON request bodies, read by the engine's one strict reader rather than FastAPI's.

FastAPI decodes a route's JSON body with Python's ``json``, which accepts ``NaN``, lone
surrogates, integers of any size and nesting deep enough to break whatever serialises the value
next; rendering such a body back in a 422, or storing it, then failed with a 500. A route of
:class:`StrictJSONRoute` reads its JSON body first with :func:`engine.json_input.parse_json`:
what that refuses propagates to the app's error map as a 400 ``{"status", "message"}`` naming
the problem and where it is, before the route runs or anything is written; what it accepts is
the value FastAPI then validates. Every router whose routes take a JSON body is made with
``route_class=StrictJSONRoute`` (a test sends a bad body to every JSON route ``/openapi.json``
documents).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from engine.json_input import parse_json


def declares_json(request: Request) -> bool:
    """Whether the body is declared JSON (``application/json`` or ``application/*+json``): what
    FastAPI decodes as JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _StrictJSONRequest(Request):
    """A request whose ``json()`` is the strict reader's value (read once, then kept)."""

    _strict_json: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = parse_json(await self.body())
        return self._strict_json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`~engine.json_input.parse_json` first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict(request: Request) -> Response:
            strict_request = _StrictJSONRequest(request.scope, request.receive)
            if declares_json(strict_request) and await strict_request.body():
                await strict_request.json()  # a refusal is raised here, to the error map
            return await handler(strict_request)

        return strict


__all__ = ["StrictJSONRoute", "declares_json"]
