"""Signing in to the console and out of it.

``POST /sign-in`` is ``POST /token``'s check (the sign-in gate, the throttle, the security
events: a failure here is logged and counted like one there) issuing a token for the session's
lifetime, which becomes the session cookie (:mod:`engine.server.console.sessions`). A wrong
name or password is answered 401 with the form again and one message for both, so the page
does not tell which names exist; a throttled sign-in 429 with ``Retry-After``. After signing in
the browser goes to the page it asked for (``next``, only a path inside the console), or Runs.

Signing in again from a browser that has a session ends that session (its token is deleted),
so no token outlives the cookie that held it. ``POST /sign-out`` deletes the session's token
(another server sharing the database stops accepting it within its token cache period) and
clears the cookie; ``treeflow users rotate`` ends every session of the user at once.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.auth import Accounts
from engine.auth.errors import AuthError, InvalidCredentials, SignInBusy, TooManyFailures
from engine.errors import BadRequest
from engine.server.auth import SignInGate, client_address
from engine.server.console.csrf import end_pre_session, set_pre_session, start_pre_session
from engine.server.console.forms import read_page_form
from engine.server.console.rendering import render
from engine.server.console.sessions import (
    clear_session,
    console_base,
    session_token,
    set_session,
)
from engine.server.security import SecurityEvents
from engine.server.settings import ServerSettings

router = APIRouter()


def safe_next(request: Request, wanted: str | None) -> str:
    """``wanted`` if it is a path inside the console, else the Runs page: a sign-in link
    cannot send the browser to another site."""
    base = console_base(request)
    if wanted and wanted.startswith(f"{base}/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return f"{base}/runs"


def _form_page(
    request: Request,
    *,
    username: str = "",
    next_path: str = "",
    message: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    secret = start_pre_session(request)
    response = render(
        request,
        "sign_in.html",
        {"username": username, "next": next_path, "message": message},
        status_code=status_code,
        headers=headers,
    )
    set_pre_session(response, request, secret)
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    ended = request.query_params.get("ended")
    message = "Your session ended or was revoked; sign in again." if ended else None
    return _form_page(request, next_path=request.query_params.get("next", ""), message=message)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    fields = await read_page_form(request, ("username", "password"), ("next",))
    name = fields["username"]
    accounts: Accounts = request.app.state.accounts
    gate: SignInGate = request.app.state.sign_in_gate
    settings: ServerSettings = request.app.state.settings
    address = client_address(request)
    next_path = fields.get("next", "")
    try:
        issued = await gate.sign_in(
            accounts, name, fields["password"], address=address, seconds=settings.session_seconds
        )
    except (AuthError, BadRequest) as exc:
        events: SecurityEvents = request.app.state.security
        events.sign_in_refused(exc, username=name, client=address)
        if isinstance(exc, InvalidCredentials):
            message, status, headers = "Wrong user name or password.", 401, None
        elif isinstance(exc, TooManyFailures | SignInBusy):
            message = f"{exc.reason.capitalize()}." if exc.reason else str(exc)
            status = 429 if isinstance(exc, TooManyFailures) else 503
            headers = {"Retry-After": str(exc.retry_after)}
        else:
            message, status, headers = str(exc), 400, None
        return _form_page(
            request,
            username=name,
            next_path=next_path,
            message=message,
            status_code=status,
            headers=headers,
        )
    replaced = session_token(request)
    if replaced is not None:  # signing in again (as anyone): the session it replaces ends
        await run_in_threadpool(accounts.revoke_token, replaced)
    response = RedirectResponse(safe_next(request, next_path), status_code=303)
    set_session(response, request, issued)
    end_pre_session(response, request)  # the session's own token protects the forms now
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await read_page_form(request, ())
    token = session_token(request)
    if token is not None:
        accounts: Accounts = request.app.state.accounts
        await run_in_threadpool(accounts.revoke_token, token)
    response = RedirectResponse(f"{console_base(request)}/sign-in", status_code=303)
    clear_session(response, request)
    return response


__all__ = ["router", "safe_next"]
