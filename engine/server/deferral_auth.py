"""Deferral-token authentication: callbacks that complete a deferral with its token alone.

Kinetic Task's callback scripts (a handler's external system calling back) complete or update
a deferred task with nothing but its token, which Kinetic allowed through policy rules. treeflow
offers the same, **off by default**: with ``treeflow serve --deferral-token-auth``
(``TREEFLOW_DEFERRAL_TOKEN_AUTH``), a call to createDeferred, ``complete-deferred-task``,
``update-deferred-task`` (v1) or ``/runs/task/{token}`` (v2) that sends no ``Authorization``
header is accepted when:

- its token is a deferral token's shape (40 lowercase hex digits: 160 random bits);
- the token's task is deferred now, in a run whose tree version says
  ``deferral_token_auth: true`` (a tree opts in; every other tree's tokens still need
  credentials);
- the caller's address has not failed this way too often: failures are counted like failed
  sign-ins (``engine.auth.throttle``, five per address in the failure window, then 429), so
  tokens cannot be guessed at speed, and every acceptance and refusal is logged on
  ``treeflow.security``.

The trade-off: the token becomes a bearer credential for that one task. Whoever sees it (in a
log, a ticket, a URL) can complete the task, as in Kinetic Task; nothing else of the installation
is reachable with it. A call that sends credentials is checked as always.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine.auth import Accounts, User
from engine.auth.errors import InvalidToken
from engine.json_input import parse_json
from engine.server.auth import client_address, request_user
from engine.server.forms import urlencoded_pairs
from engine.server.security import SecurityEvents
from engine.server.settings import ServerSettings

DEFERRAL_TOKEN = re.compile(r"[0-9a-f]{40}")
TokenOf = Callable[[Request], Awaitable[str | None]]
# Who a call authenticated by its deferral token alone is, for idempotency keys and the log.
TOKEN_CALLER = User(
    id="deferral-token",
    name="(deferral token)",
    role="user",
    disabled=False,
    security_stamp="",
    created_at=0.0,
    updated_at=0.0,
)


async def form_token(request: Request) -> str | None:
    """The ``token`` field of a form body (createDeferred)."""
    for name, value in urlencoded_pairs(await request.body()):
        if name == "token":
            return value
    return None


async def json_token(request: Request) -> str | None:
    """The ``token`` property of a JSON body (v1 complete- and update-deferred-task)."""
    try:
        body: Any = parse_json(await request.body(), field="body")
    except ValueError:
        return None  # the route refuses the body itself, with its own message
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


async def path_token(request: Request) -> str | None:
    """The ``{token}`` of the path (v2 ``/runs/task/{token}``)."""
    token = request.path_params.get("token")
    return token if isinstance(token, str) else None


def _opted_in(request: Request, token: str) -> int | None:
    """The run of the token if its tree opts in; None otherwise."""
    engine = request.app.state.engine
    run_id = engine.run_of_deferral(token)
    if run_id is None:
        return None
    tree = engine.tree_of_run(engine.get_run(run_id))
    return run_id if tree.definition.get("deferral_token_auth") is True else None


def _check(request: Request, token: str | None) -> User:
    accounts: Accounts = request.app.state.accounts
    events: SecurityEvents = request.app.state.security
    address = client_address(request)
    attempt = accounts.throttle.reserve(
        f"deferral-token@{address}",
        shown_name="(deferral token)",
        address=address,
        now=accounts.clock(),
    )
    try:
        shaped = token is not None and DEFERRAL_TOKEN.fullmatch(token) is not None
        run_id = _opted_in(request, token) if shaped and token is not None else None
    except BaseException:
        attempt.abandoned()
        raise
    if run_id is None:
        attempt.failed()
        why = "not a deferral token" if not shaped else "no deferred task of an opted-in tree"
        error = InvalidToken(detail=f"deferral-token call refused: {why}", code="deferral_token")
        events.token_refused(error, client=address)
        raise error
    attempt.succeeded()
    events.deferral_token_accepted(run_id=run_id, client=address)
    return TOKEN_CALLER


def deferral_caller(token_of: TokenOf) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the caller's credentials as always, or, with deferral-token auth on and
    no ``Authorization`` header, the deferral token ``token_of`` finds in the request."""

    async def dependency(request: Request) -> User:
        settings: ServerSettings = request.app.state.settings
        if not settings.deferral_token_auth or request.headers.get("authorization"):
            return await request_user(request)
        token = await token_of(request)
        return await run_in_threadpool(_check, request, token)

    return dependency


__all__ = [
    "DEFERRAL_TOKEN",
    "TOKEN_CALLER",
    "deferral_caller",
    "form_token",
    "json_token",
    "path_token",
]
