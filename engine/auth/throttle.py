"""Throttling of sign-ins: a limit of attempts per user name and per client address.

Each key (a user name's key, a client address) may have ``limit`` failed sign-ins inside
``window`` seconds; beyond that, sign-ins are refused without checking the password until the
oldest of those failures leaves the window. An attempt is counted before its password is
checked (reserved, atomically, for both keys at once) and settled after: a wrong password
turns it into a failure; a success forgets the user name's failures and releases the address's
reservation (one valid account cannot reset an address that guesses others); an attempt that
never reached the check (no hashing slot, an error) is released. So sixteen parallel guesses
against a limit of five check five passwords, not sixteen.

The counts are rows in the database (``Engine.users``), so every server process sharing it
counts together, and ``treeflow users unlock`` lifts a lock-out on running servers at once.
A reservation left by a process that died while checking a password stops counting after
``PENDING_SECONDS``. Rows expire with their window and are deleted by later sign-ins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.auth.errors import TooManyFailures

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.records import SignInAttempts

PENDING_SECONDS = 60.0  # far longer than any password check; then the attempt is abandoned
MAX_ADDRESS = 200  # an address from a trusted proxy's header is kept to this many characters


def user_key(name_key: str) -> str:
    return f"user:{name_key}"


def address_key(address: str) -> str:
    return f"address:{address[:MAX_ADDRESS]}"


@dataclass(frozen=True)
class Attempt:
    """A reserved sign-in attempt: settle it once, with :meth:`failed`, :meth:`succeeded` or
    :meth:`abandoned`."""

    throttle: SignInThrottle
    at: float
    user: str
    address: str

    def failed(self) -> None:
        self.throttle.engine.users.settle_attempt(at=self.at, failed=(self.user, self.address))

    def succeeded(self) -> None:
        users = self.throttle.engine.users
        users.settle_attempt(at=self.at, cleared=(self.user,), released=(self.address,))

    def abandoned(self) -> None:
        self.throttle.engine.users.settle_attempt(at=self.at, released=(self.user, self.address))


class SignInThrottle:
    """The sign-in limits of one engine's database, per user name and per address."""

    def __init__(
        self,
        engine: Engine,
        *,
        per_user: int,
        per_address: int,
        window: float,
    ) -> None:
        for name, limit in (("per_user", per_user), ("per_address", per_address)):
            if limit < 1:
                raise ValueError(f"{name} must be at least 1, not {limit}")
        self.engine = engine
        self.per_user = per_user
        self.per_address = per_address
        self.window = window

    def reserve(self, name_key: str, *, shown_name: str, address: str, now: float) -> Attempt:
        """Count an attempt for the user name and the address, or raise
        :class:`TooManyFailures` naming the one at its limit (counting nothing)."""
        user, addr = user_key(name_key), address_key(address)
        refused = self.engine.users.reserve_attempt(
            {user: self.per_user, addr: self.per_address},
            now=now,
            failures_since=now - self.window,
            pending_since=now - PENDING_SECONDS,
        )
        if refused is not None:
            if refused.key == user:
                limit, subject = self.per_user, f"user {shown_name!r}"
            else:
                limit, subject = self.per_address, f"address {address}"
            wait = self._retry_after(refused, limit, now)
            raise TooManyFailures(subject=subject, retry_after=wait)
        return Attempt(self, now, user, addr)

    def _retry_after(self, refused: SignInAttempts, limit: int, now: float) -> int:
        """Whole seconds until the key may try again: until the oldest counted failure leaves
        the window, or (when attempts in progress fill the limit) a second."""
        if len(refused.failures) < limit:
            return 1
        return max(1, math.ceil(refused.failures[-limit] + self.window - now))

    def recent_failures(self, key: str, *, now: float) -> int:
        """How many failures of a key count now."""
        found = self.engine.users.attempts(key)
        if found is None:
            return 0
        return sum(1 for t in found.failures if t > now - self.window)

    def unlock(self, key: str, *, now: float) -> int:
        """Forget the failures of a key (:func:`user_key`, :func:`address_key`); how many of
        them counted."""
        found = self.engine.users.clear_attempts(key)
        if found is None:
            return 0
        return sum(1 for t in found.failures if t > now - self.window)


__all__ = ["PENDING_SECONDS", "Attempt", "SignInThrottle", "address_key", "user_key"]
