"""``http_request_v1``: one HTTP request to any URL, with a timeout and a cap on the response.

Kinetic's public handler repositories have no generic HTTP handler apart from the platform's own
(``kinetic_core_api_v1``: ``method``, ``path`` and ``body`` against the Kinetic Platform), so this
one takes that handler's parameter and result names with a full ``url`` in place of ``path``:
``method``, ``url``, ``headers`` (a JSON object of header names to values), ``body``,
``timeout`` (seconds, at most 300) and ``error_handling``; results ``Response Body``,
``Response Code``, ``Response Headers`` (a JSON object) and ``Handler Error Message``.

Any response is a result, whatever its status: a tree branches on ``Response Code``. What fails
the node (or, with ``error_handling: Error Message``, fills ``Handler Error Message``) is what
keeps an answer from arriving: a URL that is not http(s), headers that are not a JSON object of
strings, a timeout, a connection refused, or a body longer than ``TREEFLOW_HTTP_MAX_BYTES``
(1 MiB by default; it is read in chunks and the connection dropped past the cap, never held
whole). Redirects are not followed: a 3xx is an answer, with its ``Location`` among the headers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import httpx

from engine.handlers.handler import Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl

from .error_handling import ERROR_HANDLING_PARAMETER, ERROR_RESULT, failed

HANDLER_ID = "http_request_v1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RESULTS = ("Response Body", "Response Code", "Response Headers", ERROR_RESULT)
MAX_BYTES_VARIABLE = "TREEFLOW_HTTP_MAX_BYTES"
DEFAULT_MAX_BYTES = 1_048_576
MAX_TIMEOUT = 300.0


class _Refused(Exception):
    """A reason to fail the node."""


def _headers(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _Refused(f"parameter 'headers' is not JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise _Refused('parameter \'headers\' must be a JSON object of strings: {"Name": "value"}')
    return {str(k): v for k, v in data.items()}


def _timeout(text: str) -> float:
    try:
        seconds = float(text or "30")
    except ValueError:
        raise _Refused(f"parameter 'timeout' is {text!r}, not a number of seconds") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise _Refused(f"parameter 'timeout' is {text!r}; it must be above 0 and at most 300")
    return seconds


def _max_bytes() -> int:
    text = os.environ.get(MAX_BYTES_VARIABLE, str(DEFAULT_MAX_BYTES))
    if not text.isdigit() or int(text) == 0:
        raise _Refused(f"{MAX_BYTES_VARIABLE} is {text!r}, not a positive number of bytes")
    return int(text)


def _read(response: httpx.Response, cap: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise _Refused(f"the response body is over {cap} bytes ({MAX_BYTES_VARIABLE})")
    return bytes(body)


def _request(context: HandlerContext) -> Mapping[str, str]:
    parameters = context.parameters
    method = (parameters.get("method") or "GET").upper()
    url = parameters.get("url", "").strip()
    try:
        if method not in METHODS:
            raise _Refused(f"parameter 'method' is {method!r}, not one of {', '.join(METHODS)}")
        if not url.lower().startswith(("http://", "https://")):
            raise _Refused(f"parameter 'url' is {url!r}: it must start with http:// or https://")
        headers, timeout, cap = (
            _headers(parameters.get("headers", "")),
            _timeout(parameters.get("timeout", "")),
            _max_bytes(),
        )
        body = parameters.get("body", "")
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(method, url, headers=headers, content=body or None) as response,
        ):
            content = _read(response, cap)
    except _Refused as exc:
        return failed(context, HANDLER_ID, str(exc), RESULTS)
    except httpx.TimeoutException:
        return failed(context, HANDLER_ID, f"{method} {url} timed out after {timeout}s", RESULTS)
    except httpx.HTTPError as exc:
        reason = f"{method} {url} failed: {type(exc).__name__}: {exc}"
        return failed(context, HANDLER_ID, reason, RESULTS)
    return {
        "Response Body": content.decode(response.encoding or "utf-8", errors="replace"),
        "Response Code": str(response.status_code),
        "Response Headers": json.dumps(dict(response.headers)),
        ERROR_RESULT: "",
    }


HTTP_REQUEST = Handler(
    definition_id=HANDLER_ID,
    execute=_request,
    parameters=(
        ERROR_HANDLING_PARAMETER,
        Parameter("method", default="GET", menu=METHODS),
        Parameter("url", required=True, description="http:// or https:// URL"),
        Parameter("headers", default="", description='a JSON object: {"Name": "value"}'),
        Parameter("body", default="", description="the request body, sent as written"),
        Parameter("timeout", default="30", description="seconds, at most 300"),
    ),
    results=RESULTS,
    description="Sends one HTTP request; its status, headers and body are the results.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [HTTP_REQUEST]
