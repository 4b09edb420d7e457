"""Bearer tokens over HTTP: ``POST /token`` (OAuth 2.0 password grant) and the caller dependency.

``POST /token`` answers as Kianda does: ``access_token``, ``token_type`` ``bearer``,
``expires_in``, ``userName``, ``userId``, ``subscriptionId``, ``securityStamp``, ``hostURL``,
``.issued`` and ``.expires`` (RFC 1123 dates, as ASP.NET writes them), with
``Cache-Control: no-store`` as RFC 6749 section 5.1 asks. ``grant_type`` may be left out (the
seed's form has only ``username``, ``password`` and ``scope``); any value but ``password`` is
refused. ``scope``, when given and when the installation has a subscription id, must be it.

A protected route depends on :func:`caller` with the roles it admits. The token comes only
from the ``Authorization: Bearer`` header (not from forms or query strings, which end up in
logs). A token verified within the last few seconds is found in the accounts' token cache
without I/O, on the event loop; any other needs a database read, which runs in the thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from email.utils import formatdate
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from engine.auth import ROLES, Accounts, User, require_role
from engine.auth.errors import InvalidScope, InvalidToken, MissingToken, UnsupportedGrantType
from engine.server.forms import FormSpec, openapi_form, optional, read_form
from engine.server.settings import ServerSettings

TOKEN_FORM = FormSpec(required=("username", "password"), optional=("scope", "grant_type"))
logger = logging.getLogger("treeflow.server.auth")
router = APIRouter()


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; :class:`MissingToken` otherwise."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingToken()
    return token


def caller(roles: Sequence[str] = ROLES) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the user the request's bearer token belongs to, if it has one of ``roles``."""

    async def dependency(request: Request) -> User:
        accounts: Accounts = request.app.state.accounts
        token = bearer_token(request)
        user = accounts.cached_user(token)
        if user is None:
            try:
                user = await run_in_threadpool(accounts.authenticate, token)
            except InvalidToken as exc:
                logger.info("refused a bearer token: %s", exc.detail)
                raise
        require_role(user, roles)
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
    address = request.client.host if request.client else "unknown"
    issued = await run_in_threadpool(
        accounts.sign_in, fields["username"], fields["password"], address=address
    )
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


__all__ = ["TOKEN_FORM", "AnyUser", "bearer_token", "caller", "router"]
