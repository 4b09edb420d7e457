"""Caps on what a client controls: request bodies (size and time) and page sizes.

The body cap is an ASGI middleware in front of everything, so no route, form parser or JSON
decoder ever holds more than ``max_bytes`` of a body. A declared ``Content-Length`` over the
cap is refused before reading; a body without one (chunked) is counted as it arrives. The 413
is answered like any other error, through the app's error map, so the trigger API's callers get
it in their own format. The rest of an oversized body is read and dropped, up to
``DRAIN_FACTOR`` times the cap, so that a client still sending can read the answer; beyond that
the connection is closed after answering.

The same middleware gives the whole body ``body_seconds`` to arrive, counted from the first
time the route (or this middleware) reads it: a body still incomplete then is answered 408
through the error map, in the caller's format, with ``Connection: close``, and whatever the
route would have answered is dropped, so nothing reaches the engine. A route that never reads
its body is not timed; the time to the end of the request head is the connection's
(``engine.server.connections``).

The engine caps what reaches it on its own: the results XML (``Engine.max_results_bytes``),
names and tokens, and messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress

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


class BodyTimeout(TreeflowError, TimeoutError):
    """A request body did not arrive in full within the server's deadline; it was not used."""

    def __init__(self, *, seconds: float, received: int) -> None:
        self.seconds = seconds
        self.received = received
        unit = "second" if seconds == 1 else "seconds"
        super().__init__(
            f"the request body did not arrive within {seconds:g} {unit} ({received} bytes "
            "received); nothing was done"
        )


DRAIN_FACTOR = 16
# Ids are INTEGER columns, so no list has more rows; a larger offset would overflow the
# database's own integer types (PostgreSQL refuses an OFFSET over a bigint).
MAX_OFFSET = 2**31 - 1

ErrorRenderer = Callable[[Request, BaseException], Response]


class BodyClock:
    """``receive`` with one deadline for the whole body, counted from its first read."""

    def __init__(self, receive: Receive, *, seconds: float) -> None:
        self._receive = receive
        self.seconds = seconds
        self.received = 0
        self.complete = False
        self.expired = False
        self._deadline: float | None = None

    async def receive(self) -> Message:
        if self.complete:  # the body is in: later reads wait for a disconnect, untimed
            return await self._receive()
        if self.expired:
            raise self.error()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self.seconds
        try:
            # Data already received is returned without waiting, even past the deadline.
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.expired = True
            raise self.error() from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message

    def error(self) -> BodyTimeout:
        return BodyTimeout(seconds=self.seconds, received=self.received)


class _Answer:
    """The app's ``send``, until its body has timed out: from then on its own answer (a 400
    from a body parser that caught the timeout, say) is dropped, and the middleware answers
    408 instead, unless the app had started answering before."""

    def __init__(self, send: Send, clock: BodyClock) -> None:
        self._send = send
        self._clock = clock
        self.started = False

    async def send(self, message: Message) -> None:
        if self._clock.expired and not self.started:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def respond(self, scope: Scope, response: Response) -> None:
        """The middleware's own answer (413, 408)."""
        self.started = True
        await response(scope, self._clock.receive, self._send)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413) or slower than ``body_seconds`` (408),
    with the response ``render`` gives."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, body_seconds: float, render: ErrorRenderer
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_seconds = body_seconds
        self.render = render

    async def __call__(self, scope: Scope, raw_receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, raw_receive, send)
            return
        clock = BodyClock(raw_receive, seconds=self.body_seconds)
        answer = _Answer(send, clock)
        with suppress(BodyTimeout):  # read here, or by a route that let the error through
            await self._limit(scope, clock.receive, answer)
        if clock.expired and not answer.started:
            response = self.render(Request(scope), clock.error())
            response.headers["Connection"] = "close"  # the rest of the body is not read
            await answer.respond(scope, response)

    async def _limit(self, scope: Scope, receive: Receive, answer: _Answer) -> None:
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, answer, size=declared, read=0, more=True)
                return
            await self.app(scope, receive, answer.send)
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
                await self._refuse(scope, receive, answer, size=None, read=size, more=more)
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

        await self.app(scope, replay, answer.send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        answer: _Answer,
        *,
        size: int | None,
        read: int,
        more: bool,
    ) -> None:
        response = self.render(Request(scope), BodyTooLarge(limit=self.max_bytes, size=size))
        drain_limit = self.max_bytes * DRAIN_FACTOR
        if size is None or size <= drain_limit:
            while more and read <= drain_limit:
                try:
                    message = await receive()
                except BodyTimeout:
                    break  # answer the 413 now and close
                if message["type"] == "http.disconnect":
                    return
                read += len(message.get("body", b""))
                more = message.get("more_body", False)
        if more:  # not read to the end: this connection cannot carry another request
            response.headers["Connection"] = "close"
        await answer.respond(scope, response)


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
    "BodyClock",
    "BodyLimit",
    "BodyTimeout",
    "BodyTooLarge",
    "page_bounds",
]
