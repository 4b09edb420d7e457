"""What uvicorn does not bound about connections: how long a request head may take, and how many.

uvicorn closes a connection that stays idle ``timeout_keep_alive`` seconds after a response, and
nothing else: neither its httptools nor its h11 protocol has a deadline for the request head, so
a connection that sends nothing, or half a request line and then nothing (slowloris), is held
forever, and so is a kept-alive one that receives a stray byte (the byte cancels the keep-alive
timer and nothing arms it again). Enough of them exhaust the process's file descriptors, and
then no request is accepted at all, ``/healthz`` included. uvicorn's ``limit_concurrency`` does
not help: it answers 503 to every request once that many connections are open, idle ones
counted, which is the same outage.

:func:`guarded_protocol` makes uvicorn's own HTTP protocol class (httptools, or h11 without it)
into one that a :class:`ConnectionGuard` watches:

- **The request head.** From a connection's opening, and from the first byte of each later
  request on it, the head (request line and headers) must be complete within
  ``head_seconds``. Otherwise the connection is closed: with a 408 when part of a head had
  arrived, silently when nothing had. While the app handles a request no such timer runs (the
  body's deadline is the app's: ``engine.server.limits``), and between requests uvicorn's
  keep-alive timeout applies.
- **How many.** At most ``max_connections`` are open. A new connection over the cap closes the
  connection that has been open longest among those with no request in progress (idle, or still
  sending its head: what an attack holds); when every connection is handling a request, the new
  one is answered 503 with ``Retry-After`` and closed. The default cap leaves a quarter of the
  open-file limit to the database pool, the log and the trees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any, ClassVar, cast

logger = logging.getLogger("treeflow.server.connections")

WARNING_INTERVAL = 60.0  # seconds between two warnings that the connection cap was reached
UNLIMITED_FILES = 65_536  # the cap's basis when the open-file limit is unlimited
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


def default_max_connections() -> int:
    """Three quarters of this process's open-file limit (768 under the usual 1024)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no such limit to read
        return UNLIMITED_FILES * 3 // 4
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft
    return max(1, files * 3 // 4)


def _seconds(seconds: float) -> str:
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


def _response(template: bytes, text: str) -> bytes:
    body = text.encode("ascii")
    return template % (len(body), body)


class ConnectionGuard:
    """The open connections of one server, oldest first, and the limits they are held to."""

    def __init__(self, *, head_seconds: float, max_connections: int) -> None:
        if not head_seconds > 0:
            raise ValueError(f"head_seconds must be more than 0, not {head_seconds}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.head_seconds = head_seconds
        self.max_connections = max_connections
        self._open: dict[GuardedConnection, None] = {}  # insertion order: oldest first
        self._shed = 0  # connections closed or refused at the cap since the last warning
        self._warn_after = 0.0

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[GuardedConnection]:
        return iter(list(self._open))

    def admit(self, connection: GuardedConnection) -> bool:
        """Count a new connection in; at the cap, make room by closing the oldest idle one.

        False when every open connection is handling a request: the new one is refused.
        """
        if len(self._open) >= self.max_connections:
            victim = next((c for c in self._open if not c.busy), None)
            self._note_shed()
            if victim is None:
                return False
            self.forget(victim)
            victim.close_idle()
        self._open[connection] = None
        return True

    def forget(self, connection: GuardedConnection) -> None:
        self._open.pop(connection, None)

    def _note_shed(self) -> None:
        self._shed += 1
        now = time.monotonic()
        if now >= self._warn_after:
            logger.warning(
                "%d connections open, the limit (--max-connections): closed or refused %d "
                "connection(s) to make room",
                len(self._open),
                self._shed,
            )
            self._shed = 0
            self._warn_after = now + WARNING_INTERVAL


class GuardedConnection(asyncio.Protocol):
    """The part mixed into uvicorn's HTTP protocol (see :func:`guarded_protocol`).

    It only watches: uvicorn's protocol parses and answers as ever. ``transport`` and ``cycle``
    (the request in progress, with its ``response_complete``) are uvicorn's attributes.
    """

    guard: ClassVar[ConnectionGuard]
    transport: Any
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0  # bytes of a request head received since the connection was last idle

    @property
    def busy(self) -> bool:
        """A request is in progress: its head has arrived and its response is not complete."""
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.guard.admit(self):
            message = "Too many open connections; try again"
            cast(asyncio.Transport, transport).write(_response(_FULL, message))
            transport.close()
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._arm_head_timer()
        super().data_received(data)
        if self.busy:  # a head was complete: its request is the app's now
            self._cancel_head_timer()
            self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.guard.forget(self)
        super().connection_lost(exc)

    def close_idle(self) -> None:
        """Closed to make room for a new connection (it has no request in progress)."""
        self._cancel_head_timer()
        self.transport.close()

    def _arm_head_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self.guard.head_seconds, self._head_overdue)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self.busy or self.transport.is_closing():
            return
        if self._head_bytes:
            message = f"The request head did not arrive within {_seconds(self.guard.head_seconds)}"
            self.transport.write(_response(_TIMED_OUT, message))
        self.transport.close()


def guarded_protocol(
    guard: ConnectionGuard, base: type[asyncio.Protocol]
) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol, or the capped one of ``engine.server.protocols``)
    with ``guard`` watching its connections, for uvicorn's ``Config(http=...)``; one guard per
    server."""
    return type(f"Guarded{base.__name__}", (GuardedConnection, base), {"guard": guard})


__all__ = ["ConnectionGuard", "GuardedConnection", "default_max_connections", "guarded_protocol"]
