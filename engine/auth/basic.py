"""HTTP Basic credentials: a user's name and password, or an access key's id and secret.

Kinetic Task's clients (its Ruby SDK, the official v2 document's only security scheme) send
``Authorization: Basic`` on every call instead of signing in for a token. treeflow accepts it on
every route that accepts a bearer token, with the same rules:

- a **password** is checked against the same Argon2id hash as ``POST /token``, and throttled the
  same way (the same failure counts, per user name and per address, shared with ``/token``), so
  Basic is no faster a way to guess passwords than ``/token``;
- an **access key** (``engine.auth.access_keys``) is checked by the SHA-256 of its secret; a
  failure counts against the key id and the address like a wrong password (it is logged and
  can lock the address's password sign-ins out), but a right secret is never held up by those
  counts: it cannot be guessed, so refusing it would only let a stranger lock a service out;
- a refusal says what the seed's 401 says for a bad token ("security token is invalid or has
  expired"), whatever the cause, which only the server's log and metrics tell.

A success is remembered in the accounts' token cache (``token_cache_seconds``, off by default)
under the SHA-256 of the credentials, so a busy client is not hashed on every call; the cache's
rules (revocation in this process at once, elsewhere within its period) apply unchanged.
"""

from __future__ import annotations

import binascii
import math
from base64 import b64decode

from engine.auth.access_keys import AccessKeys, is_key_id
from engine.auth.accounts import Accounts, User, public_user, token_hash
from engine.auth.errors import InvalidCredentials, InvalidToken
from engine.auth.names import MAX_NAME, name_key
from engine.auth.password_rules import MAX_PASSWORD
from engine.errors import BadRequest

MAX_HEADER = 4 * (MAX_NAME + MAX_PASSWORD + 1)  # base64 of the longest name:password, and more


def basic_credentials(value: str) -> tuple[str, str]:
    """The user name and password of an ``Authorization: Basic`` value (the part after the
    scheme), as RFC 7617 encodes them (UTF-8); :class:`InvalidToken` when it is not one."""
    value = value.strip()
    if not value or len(value) > MAX_HEADER:
        raise InvalidToken(detail="Basic credentials of no or excessive length", code="malformed")
    try:
        text = b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidToken(
            detail="Basic credentials are not base64 UTF-8", code="malformed"
        ) from None
    name, colon, password = text.partition(":")
    if not colon:
        raise InvalidToken(detail="Basic credentials without a colon", code="malformed")
    return name, password


class BasicCredentials:
    """Checks Basic credentials against the users and access keys of ``accounts``."""

    def __init__(self, accounts: Accounts, keys: AccessKeys) -> None:
        self.accounts = accounts
        self.keys = keys

    def cached_user(self, name: str, password: str) -> User | None:
        """The user of credentials that passed within the cache period, without I/O."""
        if not self.accounts.token_cache.enabled:
            return None
        return self.accounts.token_cache.get(_digest(name, password))

    def authenticate(self, name: str, password: str, *, address: str) -> User:
        """The user these credentials are, or :class:`InvalidToken` (401) saying why not in
        its ``detail``; ``TooManyFailures`` and ``SignInBusy`` as for ``POST /token``."""
        cache = self.accounts.token_cache
        generation = cache.generation
        user = self._key_user(name, password, address) if is_key_id(name) else None
        if user is None:
            user = self._password_user(name, password, address)
        cache.put(_digest(name, password), user, expires_at=math.inf, generation=generation)
        return user

    def _key_user(self, key_id: str, secret: str, address: str) -> User:
        throttle = self.accounts.throttle
        now = self.accounts.clock()
        found = self.keys.find(key_id, secret)
        if found is not None and not found.user.disabled:
            return public_user(found.user)
        # Counted after the check (the secret cannot be guessed; the count is for the log and
        # for an address that tries many keys), refused like a wrong password.
        attempt = throttle.reserve(name_key(key_id), shown_name=key_id, address=address, now=now)
        attempt.failed()
        if found is None:
            raise InvalidToken(detail=f"wrong or removed access key {key_id!r}", code="unknown_key")
        raise InvalidToken(
            detail=f"access key {key_id!r} of disabled user {found.user.name!r}",
            code="disabled_user",
        )

    def _password_user(self, name: str, password: str, address: str) -> User:
        try:
            stored = self.accounts.check_password(name, password, address=address)
        except InvalidCredentials as exc:
            detail = f"Basic credentials of user {name!r} refused: {exc.code.replace('_', ' ')}"
            raise InvalidToken(detail=detail, code=exc.code) from None
        except BadRequest:
            detail = "Basic credentials longer than any user's"
            raise InvalidToken(detail=detail, code="oversized_credentials") from None
        return public_user(stored)


def _digest(name: str, password: str) -> str:
    return token_hash(f"basic\x00{name}\x00{password}")


__all__ = ["MAX_HEADER", "BasicCredentials", "basic_credentials"]
