"""Password hashing with Argon2id (argon2-cffi's ``PasswordHasher``), a memory-hard KDF.

Memory-hard means each guess costs an attacker tens of megabytes as well as time, which is what
makes a stolen ``users`` table expensive to crack on GPUs. The hash string carries its own salt
and parameters, so stronger parameters later only need :func:`needs_rehash` at the next sign-in.
An unknown user name is checked against a fixed dummy hash, so it takes as long as a wrong
password and the response time does not tell which names exist. What a new password must be
is :mod:`engine.auth.password_rules`'s; hashing checks nothing, so that a password set under
older rules is rehashed at sign-in all the same.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.auth.password_rules import MAX_PASSWORD


class Passwords:
    """Hash and verify passwords with one ``PasswordHasher`` (its defaults unless given one)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; ``None`` (no such user) costs the same and is False."""
        if len(password) > MAX_PASSWORD:
            return False
        try:
            return self.hasher.verify(password_hash or self._dummy(), password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def _dummy(self) -> str:
        return _dummy_hash(self.hasher)


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("treeflow: no such user")


__all__ = ["Passwords"]
