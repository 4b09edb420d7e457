"""The web console: server-rendered pages over the same ``Engine`` calls as the JSON API.

``treeflow serve`` mounts it at ``/console`` (``--console-path``, ``TREEFLOW_CONSOLE_PATH``;
``--no-console`` leaves it out). It is a FastAPI application of its own, mounted in the API's,
sharing its state (the engine, the accounts, the security events), so that it can answer in
HTML where the API answers JSON: an engine error is a page saying what was wrong with the
status the API would give, a missing session a redirect to the sign-in page. It adds no
logic: every list and action is an ``Engine`` call, filtered and paged in SQL there.

Every response carries a Content-Security-Policy that allows scripts, styles and images from
the console's own origin only, with no inline script or style (the templates have none; htmx
is configured by a ``<meta>`` not to inject its own styles or evaluate code), and refuses
framing. Every asset (htmx, the stylesheet, the script) is served from the package
(``static/``), never a CDN. Every POST passes :func:`~engine.server.console.csrf.check_csrf`
first.
"""

from __future__ import annotations

import logging
import secrets
from functools import cache
from importlib.resources import files
from urllib.parse import urlencode

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.auth.errors import InsufficientRole, SignInBusy, TooManyFailures
from engine.engine import Engine
from engine.errors import TreeflowError
from engine.server.console.csrf import CsrfRefused, check_csrf
from engine.server.console.pages import (
    deferred,
    errors,
    health,
    instances,
    run,
    runs,
    schedules,
    sign_in,
    trees,
)
from engine.server.console.rendering import render
from engine.server.console.sessions import SignInRequired, console_base
from engine.server.errors import DATABASE_ERRORS, DatabaseUnavailable, ErrorMap

logger = logging.getLogger("treeflow.server")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
# The files of static/ that are served, with their media types; nothing else is.
ASSETS = {
    "htmx.min.js": "text/javascript",
    "console.js": "text/javascript",
    "console.css": "text/css",
    "htmx-LICENSE.txt": "text/plain; charset=utf-8",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the console (pure ASGI: it holds no
    body and costs a list append)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnexpectedErrors:
    """A page for an error nobody planned for, logged with a reference.

    Inside the console's own middleware stack, so that the exception ends here: left to
    Starlette's outermost handler it would be answered and raised again, to the API's app,
    which cannot answer a response already started and drops the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # nothing can be said any more: the status line has gone
                raise
            await _unexpected(Request(scope), exc)(scope, receive, send)


def _unexpected(request: Request, exc: BaseException) -> Response:
    reference = secrets.token_hex(4)
    logger.error("unexpected error in the console (reference %s)", reference, exc_info=exc)
    message = f"Unexpected server error (reference {reference}); see the server log."
    return _error_page(request, 500, "Server error", message)


@cache
def _asset(name: str) -> bytes:
    return files("engine.server.console").joinpath("static", name).read_bytes()


async def static_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"No console asset is named {name!r}")
    headers = {"Cache-Control": "public, max-age=86400"}  # the URL carries the version
    return Response(_asset(name), media_type=ASSETS[name], headers=headers)


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


async def sign_in_required(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, SignInRequired) else None
    target = f"{console_base(request)}/sign-in"
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    params = {"next": wanted} if request.method == "GET" else {}
    if reason:
        params["ended"] = "1"
    query = f"?{urlencode(params)}" if params else ""
    if request.headers.get("hx-request"):  # htmx follows HX-Redirect with a full page load
        return Response(status_code=401, headers={"HX-Redirect": target + query})
    return RedirectResponse(target + query, status_code=303)


async def engine_error(request: Request, exc: Exception) -> Response:
    """A page with the status the JSON API gives for the same error, and what it says."""
    error_map: ErrorMap = request.app.state.error_map
    if Engine.is_database_error(exc):
        logger.warning("the database is unreachable: answered %s with 503", request.url.path)
        exc = DatabaseUnavailable()
    if not isinstance(exc, TreeflowError):  # a database error of another kind: no SQL shown
        return _unexpected(request, exc)
    status = error_map.rule_for(exc).status
    if isinstance(exc, CsrfRefused):
        return _error_page(request, 403, "Refused", str(exc))
    if isinstance(exc, InsufficientRole):
        return _error_page(request, 403, "Not allowed", "This page is for administrators.")
    response = _error_page(request, status, _TITLES.get(status, "Error"), str(exc))
    if isinstance(exc, TooManyFailures | SignInBusy | DatabaseUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A path that names no page (``/runs/abc``) is 404; a bad query or form value 400."""
    problems = exc.errors() if isinstance(exc, RequestValidationError) else []
    if any(problem["loc"][:1] == ("path",) for problem in problems):
        return _error_page(request, 404, "Not found", "There is no such page.")
    shown = "; ".join(f"{problem['loc'][-1]}: {problem['msg']}" for problem in problems)
    return _error_page(request, 400, "Not accepted", shown or "The request was not understood.")


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    message = "There is no such page." if status == 404 else str(detail)
    return _error_page(request, status, _TITLES.get(status, "Error"), message)


_TITLES = {
    400: "Not accepted",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Not accepted",
    429: "Too many attempts",
    503: "Unavailable",
}


async def home(request: Request) -> Response:
    return RedirectResponse(f"{console_base(request)}/runs", status_code=303)


def console_app(parent: FastAPI) -> FastAPI:
    """The console, sharing ``parent``'s state (engine, settings, accounts, security)."""
    console = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(check_csrf)],
    )
    console.state = parent.state
    console.add_middleware(UnexpectedErrors)
    console.add_middleware(SecurityHeaders)  # added last, so outermost: every answer has them
    console.add_exception_handler(SignInRequired, sign_in_required)
    console.add_exception_handler(TreeflowError, engine_error)
    for database_error in DATABASE_ERRORS:
        console.add_exception_handler(database_error, engine_error)
    console.add_exception_handler(HTTPException, http_error)
    console.add_exception_handler(RequestValidationError, invalid_request)
    console.add_api_route("/", home, methods=["GET"])
    console.add_api_route("/static/{name}", static_asset, methods=["GET"])
    for page in (sign_in, runs, run, errors, deferred, trees, schedules, instances, health):
        console.include_router(page.router)
    return console


def mount_console(app: FastAPI, path: str | None) -> None:
    """Mount the console on ``app`` at ``path`` (None: no console)."""
    if path is not None:
        app.mount(path, console_app(app))


__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "console_app", "mount_console"]
