"""A bound on the password hashes computed at once, so that sign-ins cannot exhaust memory.

Each Argon2id hash holds its memory cost (64 MiB with argon2-cffi's defaults) while it runs:
sixty sign-ins at once would need nearly 4 GiB. :class:`HashSlots` lets ``limit`` hashes run at
a time; a caller beyond them waits up to ``wait`` seconds for a slot and is then refused with
:class:`~engine.auth.errors.SignInBusy` (503 with ``Retry-After`` over HTTP), so a flood of
sign-ins queues briefly and is turned away instead of piling up. Every hash
:class:`~engine.auth.Accounts` computes (sign-in, rehash, adding a user, a new password) takes a
slot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engine.auth.errors import SignInBusy

DEFAULT_HASH_CONCURRENCY = 4
DEFAULT_HASH_WAIT_SECONDS = 2.0


class HashSlots:
    """At most ``limit`` password hashes at once; thread-safe."""

    def __init__(
        self, limit: int = DEFAULT_HASH_CONCURRENCY, *, wait: float = DEFAULT_HASH_WAIT_SECONDS
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if wait < 0:
            raise ValueError(f"wait must be 0 or more, not {wait}")
        self.limit = limit
        self.wait = wait
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block; :class:`SignInBusy` if none frees within ``wait``."""
        if not self._slots.acquire(timeout=self.wait):
            raise SignInBusy(limit=self.limit, retry_after=retry_after(self.wait))
        try:
            yield
        finally:
            self._slots.release()


def retry_after(wait: float) -> int:
    """The Retry-After of a refusal after waiting ``wait`` seconds: about as long again."""
    return max(1, round(wait))


__all__ = ["DEFAULT_HASH_CONCURRENCY", "DEFAULT_HASH_WAIT_SECONDS", "HashSlots", "retry_after"]
