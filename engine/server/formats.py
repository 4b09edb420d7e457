"""The seed trigger API's three response formats, and safe header values.

The caller picks the body with ``Accept`` or with the seed's own spelling ``Accepts`` (which
wins when both are sent, since HTTP clients add ``Accept: */*`` by themselves):

- default (form-encoded): ``ID=<id>`` on success, the bare message on failure,
  ``text/plain;charset=UTF-8``;
- ``application/json``:
  ``{"status":200,"message":"Created trigger '<id>'.","result":{"id":"<id>"}}`` or
  ``{"status":400,"message":"..."}``;
- ``application/xml`` (or ``text/xml``): ``<response><status>…</status><message>…</message>
  <results><id>…</id></results></response>``, without ``results`` on failure.

Success carries ``X-ID`` and ``X-Message``; failure ``X-Error-Message``. Header values must be
printable ASCII on the wire (a message may quote user input, curly quotes included), so every
other character is written as a ``\\uXXXX`` escape and long messages are cut; the body always
has the whole message.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from starlette.datastructures import Headers
from starlette.responses import Response

MAX_HEADER_CHARS = 1024
PLAIN_TYPE = "text/plain;charset=UTF-8"
JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml;charset=UTF-8"
# Characters XML 1.0 cannot carry at all; replaced so an error about them can still be sent.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_HEADER = re.compile("[^\x20-\x7e]")


class Format(enum.Enum):
    PLAIN = PLAIN_TYPE
    JSON = JSON_TYPE
    XML = XML_TYPE


_MEDIA = {
    "application/json": Format.JSON,
    "application/xml": Format.XML,
    "text/xml": Format.XML,
}


def choose_format(headers: Headers) -> Format:
    """The format ``Accepts`` (else ``Accept``) asks for; the default when it names neither."""
    accept = headers.get("accepts") or headers.get("accept") or ""
    best, best_q = Format.PLAIN, 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        found = _MEDIA.get(media.lower())
        if found is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = found, q
    return best


def header_value(text: str, *, limit: int = MAX_HEADER_CHARS) -> str:
    """``text`` as a header value: printable ASCII, other characters ``\\uXXXX``, at most
    ``limit`` characters (cut with ``...``)."""
    safe = _NOT_HEADER.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def json_body(value: object) -> str:
    """Compact JSON, non-ASCII kept as is (the body is UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def created_message(trigger_id: str) -> str:
    return f"Created trigger '{trigger_id}'."


def _xml_text(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text))


def success(fmt: Format, trigger_id: str) -> Response:
    """200 for an accepted (or simulated) trigger, in ``fmt``."""
    message = created_message(trigger_id)
    if fmt is Format.JSON:
        body = json_body({"status": 200, "message": message, "result": {"id": trigger_id}})
    elif fmt is Format.XML:
        body = (
            f"<response><status>200</status><message>{_xml_text(message)}</message>"
            f"<results><id>{_xml_text(trigger_id)}</id></results></response>"
        )
    else:
        body = urlencode({"ID": trigger_id})
    headers = {"X-ID": header_value(trigger_id), "X-Message": header_value(message)}
    return Response(body, status_code=200, headers=headers, media_type=fmt.value)


def failure(
    fmt: Format, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error response in ``fmt``: the status, the message in the body and X-Error-Message."""
    if fmt is Format.JSON:
        body = json_body({"status": status, "message": message})
    elif fmt is Format.XML:
        body = (
            f"<response><status>{status}</status><message>{_xml_text(message)}</message></response>"
        )
    else:
        body = message
    all_headers = {**(headers or {}), "X-Error-Message": header_value(message)}
    return Response(body, status_code=status, headers=all_headers, media_type=fmt.value)


__all__ = [
    "Format",
    "choose_format",
    "created_message",
    "failure",
    "header_value",
    "json_body",
    "success",
]
