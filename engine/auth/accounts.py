"""Users, roles and bearer tokens: the rules behind ``POST /token`` and ``treeflow users``.

Tokens are opaque: 32 random bytes (URL-safe text) handed to the client once and stored only
as their SHA-256. A fast hash is right here, unlike for passwords, because a token has 256 bits
of entropy: nobody can guess one, so nothing is gained by making each guess slow, and every
request pays for the check. A token is accepted while it has not expired, its user is enabled,
and the security stamp it was issued under is still the user's: rotating the stamp revokes every
token of that user at once, with nothing to look up but the row already read.

A server may keep tokens that passed the check for a few seconds (``token_cache_seconds``, see
:mod:`engine.auth.token_cache` for what that guarantees), so that most requests are
authenticated without a database read.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.auth.errors import (
    InsufficientRole,
    InvalidCredentials,
    InvalidToken,
    TooManyFailures,
    UserExists,
    UserNotFound,
)
from engine.auth.passwords import Passwords
from engine.auth.throttle import FailureThrottle
from engine.auth.token_cache import TokenCache
from engine.errors import BadRequest
from engine.records import StoredUser

if TYPE_CHECKING:
    from engine.engine import Engine

ROLES = ("admin", "user")
MAX_NAME = 150
MAX_TOKEN = 256  # issued tokens are 43 characters; anything much longer is not one of ours
DEFAULT_TOKEN_SECONDS = 299  # Kianda's expires_in


@dataclass(frozen=True)
class User:
    """A user as callers see it: never its password hash."""

    id: str
    name: str
    role: str
    disabled: bool
    security_stamp: str
    created_at: float
    updated_at: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedToken:
    """A new bearer token; ``access_token`` exists only here, never in the database."""

    access_token: str
    user: User
    issued_at: float
    expires_at: float

    @property
    def expires_in(self) -> int:
        return round(self.expires_at - self.issued_at)


@dataclass(frozen=True)
class SignInPolicy:
    """How long tokens live and how many failed sign-ins are tolerated, per window."""

    token_seconds: int = DEFAULT_TOKEN_SECONDS
    failures_per_user: int = 5
    failures_per_address: int = 20
    failure_window: float = 900.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not name or not name.strip() or name != name.strip():
        raise BadRequest(field="user name", reason="must be non-empty without outer spaces")
    if len(name) > MAX_NAME or not name.isprintable():
        raise BadRequest(
            field="user name", reason=f"must be printable, at most {MAX_NAME} characters"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(field="role", reason=f"{role!r} is not one of {', '.join(ROLES)}")
    return role


def require_role(user: User, roles: Sequence[str]) -> None:
    if user.role not in roles:
        raise InsufficientRole(username=user.name, role=user.role, needed=roles)


def _public(stored: StoredUser) -> User:
    return User(
        id=stored.id,
        name=stored.name,
        role=stored.role,
        disabled=stored.disabled,
        security_stamp=stored.security_stamp,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def _stamp() -> str:
    return str(uuid.uuid4())


class Accounts:
    """Users and tokens of one engine; one instance per process (it holds the throttles).

    It reads and writes through the engine's ``users`` (``engine.store.users.UserBook``), never
    the database itself. ``clock`` defaults to the engine's. ``token_cache_seconds`` above 0
    remembers verified tokens that long at most (never past their expiry): a rotation or a
    disabling made through this instance takes effect at once, one made by another process
    within that many seconds. 0 (the default) reads every time.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] | None = None,
        policy: SignInPolicy | None = None,
        passwords: Passwords | None = None,
        token_cache_seconds: float = 0.0,
    ) -> None:
        self.users = engine.users
        clock = clock or engine.clock
        self.clock = clock
        self.policy = policy or SignInPolicy()
        self.passwords = passwords or Passwords()
        window = self.policy.failure_window
        self.user_failures = FailureThrottle(
            limit=self.policy.failures_per_user, window=window, clock=clock
        )
        self.address_failures = FailureThrottle(
            limit=self.policy.failures_per_address, window=window, clock=clock
        )
        self.token_cache: TokenCache[User] = TokenCache(seconds=token_cache_seconds, clock=clock)

    # -- managing users (the CLI) ----------------------------------------------------------------

    def add_user(self, name: str, password: str, *, role: str = "user") -> User:
        check_name(name)
        check_role(role)
        password_hash = self.passwords.hash(password)
        now = self.clock()
        values = {
            "id": str(uuid.uuid4()),
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "security_stamp": _stamp(),
            "disabled": False,
            "created_at": now,
            "updated_at": now,
        }
        stored = self.users.add(values)
        if stored is None:  # the name is taken, maybe by someone adding it at the same moment
            raise UserExists(username=name)
        return _public(stored)

    def list_users(self) -> list[User]:
        return [_public(user) for user in self.users.list()]

    def count_users(self) -> int:
        return self.users.count()

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable (or enable again) a user. Disabling also rotates the security stamp, so the
        tokens it had stay revoked after it is enabled again."""
        values: dict[str, object] = {"disabled": disabled}
        if disabled:
            values["security_stamp"] = _stamp()
        return self._update(name, values)

    def rotate(self, name: str) -> User:
        """Give the user a new security stamp, which revokes every token issued so far."""
        return self._update(name, {"security_stamp": _stamp()})

    def _update(self, name: str, values: dict[str, object]) -> User:
        stored = self.users.update(name, {**values, "updated_at": self.clock()})
        if stored is None:
            raise UserNotFound(username=name)
        self.token_cache.invalidate()  # committed: no cached token may outlive the change
        return _public(stored)

    # -- signing in and checking tokens (the HTTP adapter) ---------------------------------------

    def sign_in(self, name: str, password: str, *, address: str) -> IssuedToken:
        """Check a password and issue a token; throttled per user name and per address."""
        subjects = (
            (self.user_failures, name, f"user {name!r}"),
            (self.address_failures, address, f"address {address}"),
        )
        for throttle, key, subject in subjects:
            wait = throttle.retry_after(key)
            if wait:
                raise TooManyFailures(subject=subject, retry_after=wait)
        stored = self.users.by_name(name) if len(name) <= MAX_NAME else None
        verified = self.passwords.verify(stored.password_hash if stored else None, password)
        if stored is None or not verified or stored.disabled:
            for throttle, key, _subject in subjects:
                throttle.fail(key)
            raise InvalidCredentials(username=name)
        self.user_failures.clear(name)
        return self._issue(stored, password)

    def _issue(self, stored: StoredUser, password: str) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.policy.token_seconds
        rehashed = None
        if self.passwords.needs_rehash(stored.password_hash):
            rehashed = self.passwords.hash(password)
        self.users.issue(
            {
                "token_hash": token_hash(token),
                "user_id": stored.id,
                "security_stamp": stored.security_stamp,
                "issued_at": now,
                "expires_at": expires,
            },
            now=now,
            new_password_hash=rehashed,
        )
        return IssuedToken(
            access_token=token, user=_public(stored), issued_at=now, expires_at=expires
        )

    def cached_user(self, token: str) -> User | None:
        """The user of a token verified within the cache period, without any I/O (so it may be
        called on an event loop); None when the full check of :meth:`authenticate` is needed."""
        if not self.token_cache.enabled or not token or len(token) > MAX_TOKEN:
            return None
        return self.token_cache.get(token_hash(token))

    def authenticate(self, token: str) -> User:
        """The user a bearer token belongs to, or :class:`InvalidToken` saying why not."""
        if not token or len(token) > MAX_TOKEN:
            raise InvalidToken(detail="not a token this server issued")
        digest = token_hash(token)
        cached = self.token_cache.get(digest)
        if cached is not None:
            return cached
        generation = self.token_cache.generation
        found = self.users.token(digest)
        if found is None:
            raise InvalidToken(detail="unknown token")
        if found.expires_at <= self.clock():
            raise InvalidToken(detail=f"token of user {found.user.name!r} expired")
        if found.user.disabled:
            raise InvalidToken(detail=f"user {found.user.name!r} is disabled")
        if found.security_stamp != found.user.security_stamp:
            raise InvalidToken(detail=f"token of user {found.user.name!r} was revoked")
        user = _public(found.user)
        self.token_cache.put(digest, user, expires_at=found.expires_at, generation=generation)
        return user


__all__ = [
    "DEFAULT_TOKEN_SECONDS",
    "ROLES",
    "Accounts",
    "IssuedToken",
    "SignInPolicy",
    "User",
    "check_name",
    "check_role",
    "require_role",
    "token_hash",
]
