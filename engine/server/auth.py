"""Bearer tokens over HTTP: ``POST /token`` (OAuth 2.0 password grant) and the caller dependency.

``POST /token`` answers as Kianda does: ``access_token``, ``token_type`` ``bearer``,
``expires_in``, ``userName``, ``userId``, ``subscriptionId``, ``securityStamp``, ``hostURL``,
``.issued`` and ``.expires`` (RFC 1123 dates, as ASP.NET writes them), with
``Cache-Control: no-store`` as RFC 6749 section 5.1 asks. ``grant_type`` may be left out (the
seed's form has only ``username``, ``password`` and ``scope``); any value but ``password`` is
refused. ``scope``, when given and when the installation has a subscription id, must be it.

A protected route depends on :func:`caller` with the roles it admits. The credentials come
only from the ``Authorization`` header (not from forms or query strings, which end up in logs):
``Bearer`` and a token, or ``Basic`` and a user's name and password or an access key's id and
secret (:mod:`engine.auth.basic`; checked in the sign-in gate below, as it may hash). A token
verified within the last few seconds is found in the accounts' token cache without I/O, on the
event loop; any other needs a database read, which runs in the thread pool.

Sign-ins pass a :class:`SignInGate` before they take a thread: at most ``hash_concurrency`` of
them run at once (each hashes a password), the rest wait on the event loop, holding no thread,
for up to ``hash_wait_seconds``, and are then answered 503 with ``Retry-After``. A flood of
``POST /token`` therefore neither holds more than that many Argon2 buffers nor takes the thread
pool the other routes need. Refusals are logged and counted (:mod:`engine.server.security`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from email.utils import formatdate
from functools import partial
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from engine.auth import ROLES, Accounts, IssuedToken, User, require_role
from engine.auth.basic import BasicCredentials, basic_credentials
from engine.auth.errors import (
    AuthError,
    InsufficientRole,
    InvalidScope,
    InvalidToken,
    MissingToken,
    SignInBusy,
    TooManyFailures,
    UnsupportedGrantType,
)
from engine.auth.hash_slots import retry_after
from engine.errors import BadRequest
from engine.server.forms import FormSpec, openapi_form, optional, read_form
from engine.server.security import SecurityEvents
from engine.server.settings import ServerSettings

T = TypeVar("T")
TOKEN_FORM = FormSpec(required=("username", "password"), optional=("scope", "grant_type"))
router = APIRouter()


class SignInGate:
    """At most ``limit`` sign-ins at once; a sign-in beyond waits up to ``wait`` seconds on the
    event loop, then :class:`SignInBusy`."""

    def __init__(self, limit: int, *, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self._semaphore = asyncio.Semaphore(limit)

    async def sign_in(
        self,
        accounts: Accounts,
        name: str,
        password: str,
        *,
        address: str,
        seconds: int | None = None,
    ) -> IssuedToken:
        """A token for ``seconds`` (default: the accounts' token lifetime)."""
        sign_in = partial(accounts.sign_in, name, password, address=address, seconds=seconds)
        return await self.check(sign_in)

    async def check(self, check: Callable[[], T]) -> T:
        """``check()`` (which may hash a password) in the thread pool, once a slot is free."""
        try:
            async with asyncio.timeout(self.wait):
                await self._semaphore.acquire()
        except TimeoutError:
            raise SignInBusy(limit=self.limit, retry_after=retry_after(self.wait)) from None
        try:
            return await run_in_threadpool(check)
        finally:
            self._semaphore.release()


def client_address(request: Request) -> str:
    """The caller's address: the connection's, or a trusted proxy's X-Forwarded-For."""
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; :class:`MissingToken` otherwise."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingToken()
    return token


async def basic_user(request: Request, value: str) -> User:
    """The user of ``Authorization: Basic`` credentials (a password or an access key)."""
    credentials: BasicCredentials = request.app.state.basic
    events: SecurityEvents = request.app.state.security
    address = client_address(request)
    try:
        name, password = basic_credentials(value)
        user = credentials.cached_user(name, password)
        if user is None:
            gate: SignInGate = request.app.state.sign_in_gate
            user = await gate.check(
                partial(credentials.authenticate, name, password, address=address)
            )
    except InvalidToken as exc:
        events.token_refused(exc, client=address)
        raise
    except (TooManyFailures, SignInBusy) as exc:
        events.sign_in_refused(exc, username=name, client=address)
        raise
    return user


async def token_user(request: Request, token: str) -> User:
    """The user of a bearer token."""
    accounts: Accounts = request.app.state.accounts
    user = accounts.cached_user(token)
    if user is None:
        try:
            user = await run_in_threadpool(accounts.authenticate, token)
        except InvalidToken as exc:
            request.app.state.security.token_refused(exc, client=client_address(request))
            raise
    return user


async def request_user(request: Request) -> User:
    """Whoever the request's ``Authorization`` header says: a bearer token or HTTP Basic."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "basic" and value.strip():
        return await basic_user(request, value)
    try:
        token = bearer_token(request)
    except MissingToken:
        request.app.state.security.missing_token()
        raise
    return await token_user(request, token)


def caller(roles: Sequence[str] = ROLES) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the user the request's bearer token or Basic credentials are, if it has
    one of ``roles``."""

    async def dependency(request: Request) -> User:
        events: SecurityEvents = request.app.state.security
        user = await request_user(request)
        try:
            require_role(user, roles)
        except InsufficientRole as exc:
            events.call_refused(exc, client=client_address(request))
            raise
        return user

    return dependency


# A route parameter for "any signed-in user" (either role).
AnyUser = Annotated[User, Depends(caller())]


class IssuedTokenBody(BaseModel):
    """``POST /token``'s answer, field for field as Kianda writes it."""

    model_config = ConfigDict(populate_by_name=True)

    access_token: str
    token_type: str = Field(description="always bearer")
    expires_in: int = Field(description="seconds the token is valid for")
    userName: str  # the camelCase names are Kianda's
    userId: str
    subscriptionId: str | None
    securityStamp: str
    hostURL: str
    issued: str = Field(alias=".issued", description="RFC 1123 date")
    expires: str = Field(alias=".expires", description="RFC 1123 date")


class OAuthErrorBody(BaseModel):
    """RFC 6749 section 5.2."""

    error: str = Field(description="invalid_request, invalid_grant, unsupported_grant_type, ...")
    error_description: str


_TOKEN_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": IssuedTokenBody, "description": "A bearer token"},
    400: {"model": OAuthErrorBody, "description": "Bad form, credentials, grant type or scope"},
    413: {"model": OAuthErrorBody, "description": "Request body over the size limit"},
    429: {
        "model": OAuthErrorBody,
        "description": "Too many failed sign-ins for this user or address",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    503: {
        "model": OAuthErrorBody,
        "description": "Too many sign-ins at once: every password-hashing slot stayed busy",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


@router.post(
    "/token",
    summary="Get a bearer token (OAuth 2.0 password grant)",
    openapi_extra=openapi_form(
        TOKEN_FORM,
        {
            "username": "the user's name",
            "password": "the user's password",
            "scope": "the installation's subscription id",
            "grant_type": "password (the only grant)",
        },
    ),
    responses=_TOKEN_RESPONSES,
)
async def issue_token(request: Request) -> JSONResponse:
    settings: ServerSettings = request.app.state.settings
    accounts: Accounts = request.app.state.accounts
    fields = await read_form(request, TOKEN_FORM, max_bytes=settings.max_body_bytes)
    grant_type = optional(fields, "grant_type") or "password"
    if grant_type != "password":
        raise UnsupportedGrantType(grant_type=grant_type)
    scope = optional(fields, "scope")
    if scope is not None and settings.subscription_id and scope != settings.subscription_id:
        raise InvalidScope(scope=scope)
    address = client_address(request)
    gate: SignInGate = request.app.state.sign_in_gate
    name = fields["username"]
    try:
        issued = await gate.sign_in(accounts, name, fields["password"], address=address)
    except (AuthError, BadRequest) as exc:
        events: SecurityEvents = request.app.state.security
        events.sign_in_refused(exc, username=name, client=address)
        raise
    body = {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "userName": issued.user.name,
        "userId": issued.user.id,
        "subscriptionId": settings.subscription_id,
        "securityStamp": issued.user.security_stamp,
        "hostURL": settings.public_url or str(request.base_url).rstrip("/"),
        ".issued": formatdate(issued.issued_at, usegmt=True),
        ".expires": formatdate(issued.expires_at, usegmt=True),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


__all__ = [
    "TOKEN_FORM",
    "AnyUser",
    "SignInGate",
    "bearer_token",
    "caller",
    "client_address",
    "request_user",
    "router",
]
