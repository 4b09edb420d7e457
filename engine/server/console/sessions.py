"""The console's sign-in session: a cookie holding a bearer token of the session's lifetime.

Signing in to the console is ``POST /token``'s password check (the same throttle, hashing
slots and security events) issuing a token that lives ``ServerSettings.session_seconds``
instead of 299 s. The cookie carries that token, so a session is exactly as revocable as a
token: stored only as its SHA-256, refused once expired, once its user is disabled, and once
the user's security stamp changes (``treeflow users rotate``, ``passwd``, ``disable``), with
no second mechanism to keep in step. The cookie is ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (not sent with another site's POST), ``Secure`` when the request came over TLS
(directly or through a proxy trusted with ``--forwarded-allow-ips``), limited to the console's
path, and expires with the token. The JSON API never reads cookies, only ``Authorization``,
so the cookie cannot be used to call it from another site.

:func:`console_user` is the pages' dependency: the signed-in user, or :class:`SignInRequired`,
which the console answers with a redirect to the sign-in page (for htmx requests, an
``HX-Redirect``). :func:`console_admin` also requires the ``admin`` role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import IssuedToken, User, require_role
from engine.auth.errors import InsufficientRole, InvalidToken
from engine.server.auth import client_address, token_user
from engine.server.security import SecurityEvents

SESSION_COOKIE = "treeflow_session"
ADMIN_ROLES = ("admin",)


class SignInRequired(Exception):
    """No valid session: the page asked for is answered with the sign-in page's address.

    ``reason`` is why a session was refused (the token's refusal code: expired, revoked...);
    None for a visitor who never signed in.
    """

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason or "sign-in required")


def console_base(request: Request) -> str:
    """The path the console is mounted at (``/console``), as the request reached it."""
    root: str = request.scope.get("root_path", "")
    return root


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def _is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, issued: IssuedToken) -> None:
    """Give the browser the session cookie for ``issued``."""
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path=console_base(request) or "/",
        httponly=True,
        secure=_is_tls(request),
        samesite="lax",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=console_base(request) or "/",
        httponly=True,
        secure=_is_tls(request),
        samesite="lax",
    )


async def console_user(request: Request) -> User:
    """The signed-in user (also left in ``request.state.console_user`` for the templates)."""
    token = session_token(request)
    if token is None:
        raise SignInRequired()
    try:
        user = await token_user(request, token)  # as a bearer token is checked, and logged
    except InvalidToken as exc:
        raise SignInRequired(exc.code) from None
    request.state.console_user = user
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


async def console_admin(request: Request, user: ConsoleUser) -> User:
    """The signed-in user if an administrator; :class:`InsufficientRole` (403) otherwise."""
    try:
        require_role(user, ADMIN_ROLES)
    except InsufficientRole as exc:
        events: SecurityEvents = request.app.state.security
        events.call_refused(exc, client=client_address(request))
        raise
    return user


ConsoleAdmin = Annotated[User, Depends(console_admin)]

__all__ = [
    "ADMIN_ROLES",
    "SESSION_COOKIE",
    "ConsoleAdmin",
    "ConsoleUser",
    "SignInRequired",
    "clear_session",
    "console_admin",
    "console_base",
    "console_user",
    "session_token",
    "set_session",
]
