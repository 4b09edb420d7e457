"""Engine errors to HTTP responses: one table, built once when the app is created.

Every route lets :class:`~engine.errors.TreeflowError` propagate; the app's exception handler
looks the error's class up here (the nearest class in its MRO that has a rule) and renders the
response in the calling API's dialect:

- the seed trigger API (``/kineticTask/rest/v1/Trigger/...``, and Task 3's
  ``/kinetic/rest/v1/Trigger/...``): the caller's format
  (:mod:`engine.server.formats`), with ``X-Error-Message``;
- ``POST /token``: RFC 6749 section 5.2 JSON (``{"error": ..., "error_description": ...}``);
- anything else: ``{"status": ..., "message": ...}`` JSON (a refused tree definition adds
  ``problems``: every problem with its ``file``, ``line``, ``node`` and ``message``).

401 and 403 carry ``WWW-Authenticate: Bearer`` as RFC 6750 section 3 says (no error code when
no token was sent; ``invalid_token`` or ``insufficient_scope`` otherwise), and 429 and a
sign-in's 503 a ``Retry-After``. A database that cannot be reached (the errors a connection
lost, refused or invalidated raises: ``Engine.is_database_error``) is answered 503 with
``Retry-After``, in the same dialect, and logged in one line without a traceback: the request can
be sent again (with an ``Idempotency-Key`` where it writes; the write may have committed before
the connection went). An error nobody planned for is logged with a reference and answered 500
without its details.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from engine import errors as e
from engine.auth import errors as auth
from engine.engine import Engine
from engine.server import formats
from engine.server.limits import BodyTimeout, BodyTooLarge

TRIGGER_PREFIX = "/kineticTask/rest/v1/Trigger/"
# The seed's path and Kinetic Task 3's (engine.server.kinetic_prefixes): answered alike.
TRIGGER_PREFIXES = (TRIGGER_PREFIX, "/kinetic/rest/v1/Trigger/")
TOKEN_PATH = "/token"  # noqa: S105  (a path, not a password)
REALM = "treeflow"
JSON_TYPE = "application/json"
RETRY_AFTER_SECONDS = 1  # after a 503: the pool reconnects on the next request that checks out
# What the app hands to this map besides TreeflowError (app.py registers them): a database
# error must not reach Starlette's last-resort handler, which answers and then re-raises it.
DATABASE_ERRORS = (sa.exc.SQLAlchemyError,)
logger = logging.getLogger("treeflow.server")


class DatabaseUnavailable(e.TreeflowError):
    """The database could not be reached while answering; nothing the request did is known to
    have failed or succeeded, and it may be sent again."""

    def __init__(self, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        self.retry_after = retry_after
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"The database is unavailable; try again in {retry_after} {unit}")


@dataclass(frozen=True)
class ErrorRule:
    """How one class of error is answered: its status and, for auth, its RFC 6749/6750 code."""

    status: int
    oauth_error: str = "invalid_request"
    bearer_error: str | None = None


# The one table. Order does not matter: a lookup takes the nearest class in the error's MRO.
RULES: tuple[tuple[type[BaseException], ErrorRule], ...] = (
    (e.TreeflowError, ErrorRule(500, "server_error")),
    (e.BadRequest, ErrorRule(400)),
    (e.BadAction, ErrorRule(400)),
    (e.BadResults, ErrorRule(400)),
    (e.BadResolution, ErrorRule(400)),
    (e.TreeNotFound, ErrorRule(400)),  # the seed: an unknown tree is a bad createStart
    (e.TokenNotFound, ErrorRule(400)),  # the seed's own example of an API failure
    (e.TreeError, ErrorRule(400)),
    (e.RunNotFound, ErrorRule(404)),
    (e.TriggerNotFound, ErrorRule(404)),
    (e.TreeVersionNotFound, ErrorRule(404)),
    (e.ErrorNotFound, ErrorRule(404)),
    (e.ScheduleNotFound, ErrorRule(404)),
    (auth.UserNotFound, ErrorRule(404)),
    (auth.AccessKeyNotFound, ErrorRule(404)),
    (auth.UserExists, ErrorRule(409)),
    (e.ErrorAlreadyResolved, ErrorRule(409)),
    (e.RunNotOpen, ErrorRule(409)),
    (e.RunNotDeletable, ErrorRule(409)),
    (e.VersionConflict, ErrorRule(409)),
    (e.VersionRequired, ErrorRule(428)),  # RFC 6585: a replacing write needs its precondition
    (e.ProcessNotFound, ErrorRule(404)),
    (e.ItemNotFound, ErrorRule(404)),
    (e.TreeExists, ErrorRule(409)),
    (e.KineticImportError, ErrorRule(400)),  # an export that cannot be converted (v2 import)
    (e.NotImplementedOperation, ErrorRule(501)),
    (e.InstanceNotFound, ErrorRule(404)),  # also another user's: its existence is not told
    (BodyTooLarge, ErrorRule(413)),
    (BodyTimeout, ErrorRule(408)),
    (e.IdempotencyKeyReused, ErrorRule(422)),
    (DatabaseUnavailable, ErrorRule(503, "temporarily_unavailable")),
    (auth.AuthError, ErrorRule(401, "invalid_client", "invalid_token")),
    (auth.MissingToken, ErrorRule(401, "invalid_client", None)),
    (auth.InvalidToken, ErrorRule(401, "invalid_client", "invalid_token")),
    (auth.InvalidCredentials, ErrorRule(400, "invalid_grant")),
    (auth.InsufficientRole, ErrorRule(403, "invalid_scope", "insufficient_scope")),
    (auth.TooManyFailures, ErrorRule(429, "invalid_grant")),
    (auth.SignInBusy, ErrorRule(503, "temporarily_unavailable")),  # RFC 6749 section 4.1.2.1
    (auth.InvalidScope, ErrorRule(400, "invalid_scope")),
    (auth.UnsupportedGrantType, ErrorRule(400, "unsupported_grant_type")),
)
UNEXPECTED = ErrorRule(500, "server_error")


class ErrorMap:
    """Finds the rule for an error by walking its MRO; built once from :data:`RULES`."""

    def __init__(self, rules: Iterable[tuple[type[BaseException], ErrorRule]] = RULES) -> None:
        self._rules = dict(rules)

    def rule_for(self, error: BaseException) -> ErrorRule:
        for cls in type(error).__mro__:
            rule = self._rules.get(cls)
            if rule is not None:
                return rule
        return UNEXPECTED

    def response(self, request: Request, error: BaseException) -> Response:
        """The response for ``error`` in the dialect of the API ``request`` called."""
        if Engine.is_database_error(error):
            logger.warning(
                "the database is unreachable: answered %s %s with 503 (%s)",
                request.method,
                request.url.path,
                _cause(error),
            )
            error = DatabaseUnavailable()
        rule = self.rule_for(error)
        if isinstance(error, e.TreeflowError):
            message = str(error)
        else:
            reference = secrets.token_hex(4)
            logger.error("unexpected error (reference %s)", reference, exc_info=error)
            message = f"Unexpected server error (reference {reference}); see the server log"
        headers = _headers(rule, error)
        path = request.url.path
        if path.startswith(TRIGGER_PREFIXES):
            fmt = formats.choose_format(request.headers)
            return formats.failure(fmt, rule.status, message, headers)
        body: dict[str, object]
        if path == TOKEN_PATH:
            body = {"error": rule.oauth_error, "error_description": _description(message)}
            headers |= {"Cache-Control": "no-store", "Pragma": "no-cache"}
        else:
            body = {"status": rule.status, "message": message}
            if isinstance(error, e.TreeError):  # every problem, each where it is
                body["problems"] = [_problem(problem) for problem in error.problems]
        return Response(
            formats.json_body(body),
            status_code=rule.status,
            headers=headers,
            media_type=JSON_TYPE,
        )


def _problem(problem: e.Problem) -> dict[str, object]:
    return {
        "file": problem.file,
        "line": problem.line,
        "node": problem.node,
        "message": problem.message,
    }


def _description(text: str) -> str:
    """RFC 6749 and 6750 allow printable ASCII except ``"`` and ``\\`` in descriptions."""
    return formats.header_value(text).replace('"', "'").replace("\\", "/")


def _headers(rule: ErrorRule, error: BaseException) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rule.status in (401, 403):
        challenge = f'Bearer realm="{REALM}"'
        if rule.bearer_error is not None:
            challenge += f', error="{rule.bearer_error}"'
            challenge += f', error_description="{_description(str(error))}"'
        headers["WWW-Authenticate"] = challenge
    if isinstance(error, auth.TooManyFailures | auth.SignInBusy | DatabaseUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    return headers


def _cause(error: BaseException) -> str:
    """The first line of what the driver said (the SQL and parameters are left out)."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = [
    "DATABASE_ERRORS",
    "RULES",
    "TOKEN_PATH",
    "TRIGGER_PREFIX",
    "TRIGGER_PREFIXES",
    "DatabaseUnavailable",
    "ErrorMap",
    "ErrorRule",
]
