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
    UserExists,
    UserNotFound,
)
from engine.auth.hash_slots import HashSlots
from engine.auth.names import MAX_NAME, check_name, name_key
from engine.auth.password_rules import MAX_PASSWORD, check_new_password
from engine.auth.passwords import Passwords
from engine.auth.throttle import SignInThrottle, address_key, user_key
from engine.auth.token_cache import TokenCache
from engine.errors import BadRequest
from engine.records import StoredUser

if TYPE_CHECKING:
    from engine.engine import Engine

ROLES = ("admin", "user")
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


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(field="role", reason=f"{role!r} is not one of {', '.join(ROLES)}")
    return role


def require_role(user: User, roles: Sequence[str]) -> None:
    if user.role not in roles:
        raise InsufficientRole(username=user.name, role=user.role, needed=roles)


def public_user(stored: StoredUser) -> User:
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
    """Users and tokens of one engine, with the sign-in throttle and the hashing bound.

    It reads and writes through the engine's ``users`` (``engine.store.users.UserBook``), never
    the database itself. ``clock`` defaults to the engine's. ``hash_slots`` bounds the password
    hashes computed at once (:mod:`engine.auth.hash_slots`); one per process, shared by
    everything that hashes there. ``token_cache_seconds`` above 0 remembers verified tokens
    that long at most (never past their expiry): a rotation or a disabling made through this
    instance takes effect at once, one made by another process within that many seconds. 0
    (the default) reads every time. Names are found ignoring case (:mod:`engine.auth.names`).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] | None = None,
        policy: SignInPolicy | None = None,
        passwords: Passwords | None = None,
        hash_slots: HashSlots | None = None,
        token_cache_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.users = engine.users
        clock = clock or engine.clock
        self.clock = clock
        self.policy = policy or SignInPolicy()
        self.passwords = passwords or Passwords()
        self.hash_slots = hash_slots or HashSlots()
        self.throttle = SignInThrottle(
            engine,
            per_user=self.policy.failures_per_user,
            per_address=self.policy.failures_per_address,
            window=self.policy.failure_window,
        )
        self.token_cache: TokenCache[User] = TokenCache(seconds=token_cache_seconds, clock=clock)

    # -- managing users (the CLI) ----------------------------------------------------------------

    def add_user(self, name: str, password: str, *, role: str = "user") -> User:
        """Add a user; its name must differ from every other's ignoring case, and its password
        follow :func:`~engine.auth.password_rules.check_new_password`."""
        check_name(name)
        check_role(role)
        check_new_password(password)
        key = name_key(name)
        taken = self.users.by_key(key)
        if taken is not None:
            raise UserExists(username=name, existing=taken.name)
        password_hash = self._hash(password)
        now = self.clock()
        values = {
            "id": str(uuid.uuid4()),
            "name": name,
            "name_key": key,
            "role": role,
            "password_hash": password_hash,
            "security_stamp": _stamp(),
            "disabled": False,
            "created_at": now,
            "updated_at": now,
        }
        stored = self.users.add(values)
        if stored is None:  # the name was taken at the same moment
            taken = self.users.by_key(key)
            raise UserExists(username=name, existing=taken.name if taken else None)
        return public_user(stored)

    def list_users(self) -> list[User]:
        return [public_user(user) for user in self.users.list()]

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

    def set_password(self, name: str, password: str) -> User:
        """Give the user a new password (checked like a new user's) and a new security stamp,
        so the tokens issued under the old password stop working. Its failed sign-ins still
        count: :meth:`unlock` forgets them."""
        check_new_password(password)
        if self.users.by_key(name_key(name)) is None:
            raise UserNotFound(username=name)
        password_hash = self._hash(password)
        return self._update(name, {"password_hash": password_hash, "security_stamp": _stamp()})

    def remove_user(self, name: str) -> User:
        """Delete the user, its tokens and its failed sign-ins; the runs and instances it
        created keep its id as their creator."""
        key = name_key(name)
        stored = self.users.remove(key, attempts_key=user_key(key))
        if stored is None:
            raise UserNotFound(username=name)
        self.token_cache.invalidate()
        return public_user(stored)

    def unlock(self, name: str, *, address: str | None = None) -> tuple[User, int]:
        """Forget the user's failed sign-ins (and the address's, if given), lifting a lock-out
        on every server sharing the database at once; the user and how many failures counted."""
        key = name_key(name)
        stored = self.users.by_key(key)
        if stored is None:
            raise UserNotFound(username=name)
        now = self.clock()
        forgotten = self.throttle.unlock(user_key(key), now=now)
        if address is not None:
            forgotten += self.throttle.unlock(address_key(address), now=now)
        return public_user(stored), forgotten

    def failed_sign_ins(self, name: str) -> int:
        """How many failed sign-ins count against the user name now."""
        return self.throttle.recent_failures(user_key(name_key(name)), now=self.clock())

    def _update(self, name: str, values: dict[str, object]) -> User:
        stored = self.users.update(name_key(name), {**values, "updated_at": self.clock()})
        if stored is None:
            raise UserNotFound(username=name)
        self.token_cache.invalidate()  # committed: no cached token may outlive the change
        return public_user(stored)

    def _hash(self, password: str) -> str:
        with self.hash_slots.slot():
            return self.passwords.hash(password)

    # -- signing in and checking tokens (the HTTP adapter) ---------------------------------------

    def sign_in(
        self, name: str, password: str, *, address: str, seconds: int | None = None
    ) -> IssuedToken:
        """Check a password and issue a token; throttled per user name and per address.

        The token lives ``seconds`` (default: the policy's ``token_seconds``); the console's
        session cookie is such a token, issued for the session's lifetime.

        A name or password longer than any user can have is refused as a bad request before
        anything is counted, stored or hashed. Otherwise the attempt is counted first
        (:class:`~engine.auth.errors.TooManyFailures` when a limit is reached), then the
        password is checked in a hashing slot (:class:`~engine.auth.errors.SignInBusy` when
        none frees in time, which does not count as a failure).
        """
        stored = self.check_password(name, password, address=address)
        return self._issue(stored, password, seconds=seconds or self.policy.token_seconds)

    def check_password(self, name: str, password: str, *, address: str) -> StoredUser:
        """The enabled user ``name`` if ``password`` is its password, throttled as
        :meth:`sign_in` says (which calls it); :class:`InvalidCredentials` otherwise."""
        if len(name) > MAX_NAME:
            raise BadRequest(field="user name", reason=f"longer than {MAX_NAME} characters")
        if len(password) > MAX_PASSWORD:
            raise BadRequest(field="password", reason=f"longer than {MAX_PASSWORD} characters")
        key = name_key(name)
        attempt = self.throttle.reserve(key, shown_name=name, address=address, now=self.clock())
        try:
            stored = self.users.by_key(key)
            with self.hash_slots.slot():
                verified = self.passwords.verify(stored.password_hash if stored else None, password)
        except BaseException:
            attempt.abandoned()
            raise
        if stored is None or not verified or stored.disabled:
            attempt.failed()
            code = "unknown_user" if stored is None else "wrong_password"
            if stored is not None and verified:
                code = "disabled_user"
            raise InvalidCredentials(username=name, code=code)
        attempt.succeeded()
        return stored

    def _issue(self, stored: StoredUser, password: str, *, seconds: int) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + seconds
        rehashed = None
        if self.passwords.needs_rehash(stored.password_hash):
            rehashed = self._hash(password)
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
            access_token=token, user=public_user(stored), issued_at=now, expires_at=expires
        )

    def revoke_token(self, token: str) -> bool:
        """Forget one token at once (the console's sign-out), here and, within the cache
        period, in every server sharing the database; whether it was a token."""
        if not token or len(token) > MAX_TOKEN:
            return False
        revoked = self.users.revoke(token_hash(token))
        self.token_cache.invalidate()
        return revoked

    def cached_user(self, token: str) -> User | None:
        """The user of a token verified within the cache period, without any I/O (so it may be
        called on an event loop); None when the full check of :meth:`authenticate` is needed."""
        if not self.token_cache.enabled or not token or len(token) > MAX_TOKEN:
            return None
        return self.token_cache.get(token_hash(token))

    def authenticate(self, token: str) -> User:
        """The user a bearer token belongs to, or :class:`InvalidToken` saying why not."""
        if not token or len(token) > MAX_TOKEN:
            raise InvalidToken(detail="not a token this server issued", code="malformed_token")
        digest = token_hash(token)
        cached = self.token_cache.get(digest)
        if cached is not None:
            return cached
        generation = self.token_cache.generation
        found = self.users.token(digest)
        if found is None:
            raise InvalidToken(detail="unknown token", code="unknown_token")
        name = found.user.name
        if found.expires_at <= self.clock():
            raise InvalidToken(detail=f"token of user {name!r} expired", code="expired_token")
        if found.user.disabled:
            raise InvalidToken(detail=f"user {name!r} is disabled", code="disabled_user")
        if found.security_stamp != found.user.security_stamp:
            raise InvalidToken(detail=f"token of user {name!r} was revoked", code="revoked_token")
        user = public_user(found.user)
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
    "public_user",
    "require_role",
    "token_hash",
]
