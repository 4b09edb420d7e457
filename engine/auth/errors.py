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

    ``detail`` says which, for the server's log; callers all get the same ``reason``, so a
    client cannot tell a forged token from a revoked one.
    """

    def __init__(self, *, detail: str) -> None:
        self.detail = detail
        super().__init__(reason="security token is invalid or has expired")


class InvalidCredentials(AuthError):
    """A user name and password did not authenticate (unknown user, wrong password, disabled)."""

    def __init__(self, *, username: str) -> None:
        self.username = username
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
    """A user with that name already exists."""

    def __init__(self, *, username: str) -> None:
        self.username = username
        super().__init__(f"a user named {username!r} already exists")


class UserNotFound(TreeflowError, LookupError):
    """No user has that name."""

    def __init__(self, *, username: str) -> None:
        self.username = username
        super().__init__(f"no user is named {username!r}")


__all__ = [
    "AuthError",
    "InsufficientRole",
    "InvalidCredentials",
    "InvalidScope",
    "InvalidToken",
    "MissingToken",
    "TooManyFailures",
    "UnsupportedGrantType",
    "UserExists",
    "UserNotFound",
]
