"""The errors of users and sign-in: who may call, and why a call was refused.

They derive from :class:`~engine.errors.TreeflowError` like every error treeflow raises, and the
HTTP adapter answers them as RFC 6749 and RFC 6750 say (``engine.server.errors``). Embedding the
engine raises none of them, which is why they live here and not in ``engine.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import TreeflowError


class AuthError(TreeflowError, PermissionError):
    """The caller is not authenticated, or not allowed to do this."""

    def __init__(self, *, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MissingToken(AuthError):
    """A call that needs a bearer token came without one (the seed's text, word for word)."""

    def __init__(self) -> None:
        super().__init__(reason="security token not provided")


class InvalidToken(AuthError):
    """A bearer token is unknown, expired, revoked (security stamp rotated) or its user disabled.

    ``detail`` says which, for the server's log, and ``code`` too, as a metric label
    (``malformed_token``, ``unknown_token``, ``expired_token``, ``revoked_token``,
    ``disabled_user``); callers all get the same ``reason``, so a client cannot tell a forged
    token from a revoked one.
    """

    def __init__(self, *, detail: str, code: str = "unknown_token") -> None:
        self.detail = detail
        self.code = code
        super().__init__(reason="security token is invalid or has expired")


class InvalidCredentials(AuthError):
    """A user name and password did not authenticate.

    ``code`` says why, for the server's log and metrics only (``unknown_user``,
    ``wrong_password``, ``disabled_user``): the caller is told the same in every case.
    """

    def __init__(self, *, username: str, code: str = "wrong_password") -> None:
        self.username = username
        self.code = code
        super().__init__(reason=f"the user name or password is incorrect for {username!r}")


class InsufficientRole(AuthError):
    """An authenticated user lacks the role a call needs."""

    def __init__(self, *, username: str, role: str, needed: Sequence[str]) -> None:
        self.username = username
        self.role = role
        self.needed = tuple(needed)
        super().__init__(
            reason=f"user {username!r} has the role {role!r}; this needs {' or '.join(needed)}"
        )


class TooManyFailures(AuthError):
    """Sign-ins are throttled after repeated failures for one user name or one address."""

    def __init__(self, *, subject: str, retry_after: int) -> None:
        self.subject = subject
        self.retry_after = retry_after
        super().__init__(
            reason=f"too many failed sign-ins for {subject}; retry after {retry_after} seconds"
        )


class SignInBusy(AuthError):
    """Every password-hashing slot stayed busy while this sign-in waited for one."""

    def __init__(self, *, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            reason=f"too many sign-ins at once (at most {limit} checked at a time); "
            f"retry after {retry_after} seconds"
        )


class InvalidScope(AuthError):
    """A token request named a scope other than this installation's subscription id."""

    def __init__(self, *, scope: str) -> None:
        self.scope = scope
        super().__init__(reason=f"the scope {scope!r} is not this installation's subscription id")


class UnsupportedGrantType(AuthError):
    """A token request asked for a grant other than ``password``."""

    def __init__(self, *, grant_type: str) -> None:
        self.grant_type = grant_type
        super().__init__(reason=f"the grant type {grant_type!r} is not supported: use 'password'")


class UserExists(TreeflowError, ValueError):
    """A user with that name, ignoring case, already exists (named ``existing``)."""

    def __init__(self, *, username: str, existing: str | None = None) -> None:
        self.username = username
        self.existing = existing or username
        if self.existing == username:
            message = f"a user named {username!r} already exists"
        else:
            message = (
                f"a user named {self.existing!r} already exists, so {username!r} cannot be "
                "added (user names ignore case)"
            )
        super().__init__(message)


class UserNotFound(TreeflowError, LookupError):
    """No user has that name."""

    def __init__(self, *, username: str) -> None:
        self.username = username
        super().__init__(f"no user is named {username!r}")


class AccessKeyNotFound(TreeflowError, LookupError):
    """No access key has that id (it may have been removed)."""

    def __init__(self, *, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"no access key has the id {key_id!r}")


__all__ = [
    "AccessKeyNotFound",
    "AuthError",
    "InsufficientRole",
    "InvalidCredentials",
    "InvalidScope",
    "InvalidToken",
    "MissingToken",
    "SignInBusy",
    "TooManyFailures",
    "UnsupportedGrantType",
    "UserExists",
    "UserNotFound",
]
