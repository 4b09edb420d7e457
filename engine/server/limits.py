"""Caps on what a client controls: request bodies and page sizes.

The body cap is an ASGI middleware in front of everything, so no route, form parser or JSON
decoder ever holds more than ``max_bytes`` of a body. A declared ``Content-Length`` over the
cap is refused before reading; a body without one (chunked) is counted as it arrives. The 413
is answered like any other error, through the app's error map, so the trigger API's callers get
it in their own format. The rest of an oversized body is read and dropped, up to
``DRAIN_FACTOR`` times the cap, so that a client still sending can read the answer; beyond that
the connection is closed after answering.

The engine caps what reaches it on its own: the results XML (``Engine.max_results_bytes``),
names and tokens, and messages.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import BadRequest, TreeflowError


class BodyTooLarge(TreeflowError, ValueError):
    """A request body is over the server's size limit; it was not read to the end."""

    def __init__(self, *, limit: int, size: int | None = None) -> None:
        self.limit = limit
        self.size = size
        what = "the request body" if size is None else f"the request body of {size} bytes"
        super().__init__(f"{what} is over the limit of {limit} bytes")


DRAIN_FACTOR = 16
# Ids are INTEGER columns, so no list has more rows; a larger offset would overflow the
# database's own integer types (PostgreSQL refuses an OFFSET over a bigint).
MAX_OFFSET = 2**31 - 1

ErrorRenderer = Callable[[Request, BaseException], Response]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 rendered by ``render``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, render: ErrorRenderer) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send, size=declared, read=0, more=True)
                return
            await self.app(scope, receive, send)
            return
        # No length declared: read the whole body here (it is small, or refused), then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                more = message.get("more_body", False)
                await self._refuse(scope, receive, send, size=None, read=size, more=more)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, size: int | None, read: int, more: bool
    ) -> None:
        response = self.render(Request(scope), BodyTooLarge(limit=self.max_bytes, size=size))
        drain_limit = self.max_bytes * DRAIN_FACTOR
        if size is None or size <= drain_limit:
            while more and read <= drain_limit:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                read += len(message.get("body", b""))
                more = message.get("more_body", False)
        if more:  # not read to the end: this connection cannot carry another request
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


def page_bounds(limit: int | None, offset: int | None, *, max_limit: int) -> tuple[int, int]:
    """A list's ``limit`` and ``offset`` checked against the cap (``limit`` defaults to 50).

    Refuses, naming the parameter, a limit under 1 or over ``max_limit`` and an offset below 0
    or over ``MAX_OFFSET``: a client asking for more than the cap is told the cap rather than
    silently given less.
    """
    limit = min(50, max_limit) if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= max_limit:
        raise BadRequest(field="limit", reason=f"must be between 1 and {max_limit}, not {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        what = "0 or more" if offset < 0 else f"at most {MAX_OFFSET}"
        raise BadRequest(field="offset", reason=f"must be {what}, not {offset}")
    return limit, offset


__all__ = [
    "DRAIN_FACTOR",
    "MAX_OFFSET",
    "BodyLimit",
    "BodyTooLarge",
    "page_bounds",
]
