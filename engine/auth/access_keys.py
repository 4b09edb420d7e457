"""Access keys: Kinetic-style id and secret pairs a service account sends as HTTP Basic.

A Kinetic Task integration authenticates every call with HTTP Basic; giving it a user's password
would put that password in every script and make rotating it break them all. An access key is
made for one user (``treeflow users add-key NAME``), acts with that user's role while the user is
enabled, and is revoked alone (``treeflow users remove-key ID``).

The id (``tfk_`` and 16 hex digits) is what the client sends as the Basic user name; a name of
that shape is looked up as a key, never as a user. The secret (32 random bytes, URL-safe text)
is shown once, when the key is made, and stored only as its SHA-256: like a bearer token it has
256 bits of entropy, so a slow hash would make every call pay for nothing. Secrets are compared
in constant time.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.auth.errors import AccessKeyNotFound, UserNotFound
from engine.auth.names import name_key
from engine.errors import BadRequest
from engine.records import StoredAccessKey

if TYPE_CHECKING:
    from engine.engine import Engine

KEY_ID = re.compile(r"tfk_[0-9a-f]{16}")
MAX_DESCRIPTION = 255


@dataclass(frozen=True)
class AccessKey:
    """A key as callers see it: never its secret or the secret's hash."""

    id: str
    user_name: str
    user_id: str
    description: str
    created_at: float


@dataclass(frozen=True)
class NewAccessKey:
    """A key just made; ``secret`` exists only here."""

    key: AccessKey
    secret: str


def is_key_id(name: str) -> bool:
    """Whether a Basic user name is an access key's id (then it is never a user's name)."""
    return KEY_ID.fullmatch(name) is not None


def secret_hash(secret: str) -> str:
    from engine.auth.accounts import token_hash  # one SHA-256 for every high-entropy secret

    return token_hash(secret)


def _public(stored: StoredAccessKey) -> AccessKey:
    return AccessKey(
        id=stored.id,
        user_name=stored.user.name,
        user_id=stored.user.id,
        description=stored.description,
        created_at=stored.created_at,
    )


class AccessKeys:
    """The access keys of one engine's users, read and written through ``Engine.users``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] | None = None) -> None:
        self.users = engine.users
        self.clock = clock or engine.clock

    def add(self, user_name: str, *, description: str = "") -> NewAccessKey:
        """Make a key for ``user_name``; its secret is in the answer and nowhere else."""
        if len(description) > MAX_DESCRIPTION or not description.isprintable():
            raise BadRequest(
                field="description",
                reason=f"must be printable, at most {MAX_DESCRIPTION} characters",
            )
        user = self.users.by_key(name_key(user_name))
        if user is None:
            raise UserNotFound(username=user_name)
        secret = secrets.token_urlsafe(32)
        stored = self.users.add_key(
            {
                "id": f"tfk_{secrets.token_hex(8)}",
                "user_id": user.id,
                "secret_hash": secret_hash(secret),
                "description": description,
                "created_at": self.clock(),
            }
        )
        return NewAccessKey(key=_public(stored), secret=secret)

    def list(self, user_name: str | None = None) -> list[AccessKey]:
        """Every key, or the keys of one user."""
        user_id = None
        if user_name is not None:
            user = self.users.by_key(name_key(user_name))
            if user is None:
                raise UserNotFound(username=user_name)
            user_id = user.id
        return [_public(stored) for stored in self.users.keys(user_id=user_id)]

    def remove(self, key_id: str) -> AccessKey:
        """Revoke a key: the next call that sends it is refused."""
        stored = self.users.remove_key(key_id)
        if stored is None:
            raise AccessKeyNotFound(key_id=key_id)
        return _public(stored)

    def find(self, key_id: str, secret: str) -> StoredAccessKey | None:
        """The key whose id and secret these are, or None; its user may be disabled."""
        stored = self.users.key(key_id)
        if stored is None or not hmac.compare_digest(stored.secret_hash, secret_hash(secret)):
            return None
        return stored


__all__ = ["KEY_ID", "AccessKey", "AccessKeys", "NewAccessKey", "is_key_id", "secret_hash"]
