"""uvicorn's HTTP/1.1 protocols with a cap on request heads, and the options serve runs with.

Neither parser uvicorn uses bounds a request's head by itself: httptools (what
``uvicorn[standard]`` picks) accumulates a header of any size, and h11 stops only at its
``max_incomplete_event_size``, answering 400. The protocols here answer **431 Request Header
Fields Too Large** and close the connection once a head (request line and headers) grows past
``max_header_bytes`` or has more than ``max_headers`` fields, so a request holds at most the
cap plus one read from the socket, never what the client chooses to send.

For httptools the parsed head is measured as its parts arrive (the target, then each field's
name and value), and the bytes received while a head is incomplete are counted too, since the
parser holds a field it has not finished; a read in which a head or a message ends is not
counted that way, so a head within the cap is never refused, whatever shares its reads. For
h11 its
own bound is set to the cap (it holds no more of a head in progress) and its "buffer too long"
error answered as 431, and a head that arrived whole is measured when parsed. Both count the
fields.

:func:`uvicorn_options` also decides whether proxy headers are believed: only from the
addresses in ``forwarded_allow_ips`` (uvicorn alone would trust loopback, so anyone on the
machine could pick the address the sign-in throttle counts by).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.server.connections import ConnectionGuard, guarded_protocol
from engine.server.formats import json_body
from engine.server.settings import ServerSettings

logger = logging.getLogger("treeflow.server")
HTTP_IMPLEMENTATIONS = ("auto", "httptools", "h11")


class HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head that was refused."""


def _refusal(reason: str) -> bytes:
    body = json_body({"status": 431, "message": reason}).encode("utf-8")
    return b"".join(
        [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


def _refuse(transport: asyncio.Transport, client: object, reason: str) -> None:
    logger.warning("refused a request from %s: %s", client, reason)
    transport.write(_refusal(reason))
    transport.close()


def _too_many(max_headers: int) -> str:
    return f"the request has more than {max_headers} header fields"


def _too_large(max_bytes: int) -> str:
    return f"the request line and headers are over the limit of {max_bytes} bytes"


def httptools_protocol(max_bytes: int, max_headers: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, with the head capped."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_bytes = 0
            self.in_head = True  # between requests, the next head is what arrives
            self.boundaries = 0  # heads and messages completed on this connection
            self.fields = 0
            self.parsed = 0  # bytes of the current head's target and fields
            self.refused = False

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            boundaries = self.boundaries
            super().data_received(data)
            if self.refused or not self.in_head:
                return
            if self.boundaries != boundaries:  # this read ended a head or a message
                self.head_bytes = 0
                return
            self.head_bytes += len(data)
            if self.head_bytes > max_bytes:
                self.refuse(_too_large(max_bytes))

        def refuse(self, reason: str) -> None:
            self.refused = True
            _refuse(self.transport, self.client, reason)

        def send_400_response(self, msg: str) -> None:
            if not self.refused:  # a refused head raised in a callback: answered already
                super().send_400_response(msg)

        def on_message_begin(self) -> None:
            self.fields = 0
            self.parsed = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self.parsed += len(url)
            if self.parsed > max_bytes:
                self.refuse(_too_large(max_bytes))
                raise HeadTooLarge
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.fields += 1
            self.parsed += len(name) + len(value) + 4  # ": " and CRLF
            if self.fields > max_headers:
                self.refuse(_too_many(max_headers))
                raise HeadTooLarge
            if self.parsed > max_bytes:
                self.refuse(_too_large(max_bytes))
                raise HeadTooLarge
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.in_head = False
            self.boundaries += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.in_head = True
            self.head_bytes = 0
            self.boundaries += 1

    return CappedHttpToolsProtocol


def h11_protocol(max_bytes: int, max_headers: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, with the head capped (h11's own bound set to ``max_bytes``)."""

    class CappedConnection(h11.Connection):
        refusal: str | None = None

        def next_event(self) -> Any:
            try:
                event = super().next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    self.refusal = _too_large(max_bytes)
                raise
            if isinstance(event, h11.Request):
                size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
                if len(event.headers) > max_headers:
                    self.refusal = _too_many(max_headers)
                elif size > max_bytes:  # a head that arrived whole is not h11's "incomplete"
                    self.refusal = _too_large(max_bytes)
                if self.refusal is not None:
                    raise h11.RemoteProtocolError(self.refusal, error_status_hint=431)
            return event

    class CappedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = CappedConnection(h11.SERVER, max_incomplete_event_size=max_bytes)

        def send_400_response(self, msg: str) -> None:
            refusal = getattr(self.conn, "refusal", None)
            if refusal is None:
                super().send_400_response(msg)
            else:
                _refuse(self.transport, self.client, refusal)

    return CappedH11Protocol


def protocol_class(settings: ServerSettings, http: str = "auto") -> type[asyncio.Protocol]:
    """The capped protocol for ``http``: ``auto`` is httptools when installed (as uvicorn
    chooses), h11 otherwise."""
    if http not in HTTP_IMPLEMENTATIONS:
        raise ValueError(f"http must be one of {', '.join(HTTP_IMPLEMENTATIONS)}, not {http!r}")
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    make = httptools_protocol if http == "httptools" else h11_protocol
    return make(settings.max_header_bytes, settings.max_headers)


def uvicorn_options(
    settings: ServerSettings, *, http: str = "auto", guard: ConnectionGuard | None = None
) -> dict[str, Any]:
    """What ``uvicorn.Config`` is given besides the app, the address and logging: the capped
    protocol (watched by ``guard``, when one is given: ``engine.server.connections``), and
    proxy headers believed only from ``settings.forwarded_allow_ips``."""
    protocol = protocol_class(settings, http)
    return {
        "http": protocol if guard is None else guarded_protocol(guard, protocol),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
    }


__all__ = ["HTTP_IMPLEMENTATIONS", "h11_protocol", "httptools_protocol", "uvicorn_options"]
