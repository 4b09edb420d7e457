"""Cross-site request forgery: every POST to the console carries a token only its pages know.

The token is an HMAC of the session cookie's value (a secret the browser holds and no other
site can read, being HttpOnly), so it needs no storage and changes with each sign-in. Before
signing in there is no session, so the sign-in page sets a random pre-session cookie and the
token is derived from that instead (which keeps another site from signing a browser in to an
account of its choosing). Forms send it in the hidden field ``csrf_token``; htmx requests in
the ``X-CSRF-Token`` header (``base.html`` puts it in ``hx-headers``).

:func:`check_csrf` is a dependency of the whole console: it runs before any route, so a POST
without the right token is refused (:class:`CsrfRefused`, a 403 page saying why) before
anything is read or written. SameSite=Lax already keeps the cookie off other sites' POSTs in
current browsers; the token is the defence that does not depend on the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import TreeflowError
from engine.server.console.sessions import console_base, session_token
from engine.server.forms import FORM_TYPES, urlencoded_pairs

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PRE_SESSION_COOKIE = "treeflow_console_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY = b"treeflow console csrf"
# The most fields a console form carries: the Errors inbox's bulk form has one per error ticked
# (up to 200), Run Again one per input of the run. Each route holds its form to its own fields.
MAX_FORM_FIELDS = 256


class CsrfRefused(TreeflowError):
    """A POST whose CSRF token is missing or wrong: refused, nothing changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The form was refused: {reason}. Reload the page and try again.")


def _token_of(secret: str) -> str:
    return hmac.new(_KEY, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _secret(request: Request) -> str | None:
    fresh: str | None = getattr(request.state, "csrf_secret", None)
    return fresh or session_token(request) or request.cookies.get(PRE_SESSION_COOKIE) or None


def csrf_token(request: Request) -> str:
    """The token this browser's forms must send back ("" when it has no cookie yet)."""
    secret = _secret(request)
    return _token_of(secret) if secret else ""


def start_pre_session(request: Request) -> str | None:
    """For a page with a form but no session (sign-in): a new pre-session secret when the
    browser has none, to be given to it with :func:`set_pre_session`."""
    if session_token(request) or request.cookies.get(PRE_SESSION_COOKIE):
        return None
    secret = secrets.token_urlsafe(32)
    request.state.csrf_secret = secret
    return secret


def set_pre_session(response: Response, request: Request, secret: str | None) -> None:
    if secret is not None:
        response.set_cookie(
            PRE_SESSION_COOKIE,
            secret,
            path=console_base(request) or "/",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
        )


def end_pre_session(response: Response, request: Request) -> None:
    if request.cookies.get(PRE_SESSION_COOKIE):
        response.delete_cookie(PRE_SESSION_COOKIE, path=console_base(request) or "/")


async def _form_token(request: Request) -> str | None:
    """The form's ``csrf_token``; the body is read whole first, so that the route can read the
    form again (Starlette caches the body, not a consumed stream)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media == FORM_TYPES[0]:
        pairs = urlencoded_pairs(body, max_fields=MAX_FORM_FIELDS)
        return next((v for k, v in pairs if k == CSRF_FIELD), None)
    if media == FORM_TYPES[1]:
        max_bytes = request.app.state.settings.max_body_bytes
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=max_bytes)
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request) -> None:
    """Refuse a POST (or any unsafe method) whose token does not match this browser's."""
    if request.method in SAFE_METHODS:
        return
    secret = _secret(request)
    if secret is None:
        raise CsrfRefused("this browser sent no session cookie")
    given = request.headers.get(CSRF_HEADER) or await _form_token(request)
    if not given:
        raise CsrfRefused("it carried no security token")
    if not hmac.compare_digest(given.encode(), _token_of(secret).encode()):
        raise CsrfRefused("its security token does not match this session")


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "MAX_FORM_FIELDS",
    "PRE_SESSION_COOKIE",
    "CsrfRefused",
    "check_csrf",
    "csrf_token",
    "end_pre_session",
    "set_pre_session",
    "start_pre_session",
]
