"""Recently verified bearer tokens, kept briefly in process memory.

Checking a token is a database read, and a busy server checks the same few tokens thousands of
times a second. Remembering a token that passed the check, for a few seconds at most, lets a
request be authenticated on the event loop without a thread hop or a read. What that must not
change:

- **Expiry is exact.** An entry is used only before its token's ``expires_at`` (by the same
  clock that issued it); after that the full check runs and refuses the token.
- **Revocation in this process is immediate.** ``Accounts.rotate`` and ``Accounts.set_disabled``
  call :meth:`TokenCache.invalidate` once their change has committed, which empties the cache.
  A check that read the old row before the commit cannot put it back afterwards: entries are
  stored only under the generation that was current when their read began, and invalidating
  starts a new one.
- **Revocation elsewhere is bounded.** A change made by another process (``treeflow users
  rotate`` or ``disable``, another server) is not seen by this one until its entry is
  ``seconds`` old: that is how stale the cache can be, and why ``seconds`` is short.

Only successes are cached (a forged token always reaches the database, and cannot fill the
cache), keyed by the token's SHA-256 as in the database, and at most ``max_entries`` of them
(the oldest go first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    valid_until: float  # the earlier of the token's expiry and the end of the cache period


class TokenCache(Generic[V]):
    """Token hash to verified value (a user), each for at most ``seconds``; thread-safe."""

    def __init__(
        self, *, seconds: float, clock: Callable[[], float], max_entries: int = 10_000
    ) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be 0 or more, not {seconds}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.seconds = seconds
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, _Entry[V]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    @property
    def generation(self) -> int:
        """Take this before reading what will be :meth:`put`, and pass it along."""
        return self._generation

    def get(self, digest: str) -> V | None:
        """The value cached for ``digest`` while still valid; None otherwise."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if now >= entry.valid_until:
                del self._entries[digest]
                return None
            return entry.value

    def put(self, digest: str, value: V, *, expires_at: float, generation: int) -> None:
        """Remember ``value`` until ``expires_at`` at the latest, unless the cache was
        invalidated since ``generation`` was taken (the value may predate a revocation)."""
        if not self.enabled:
            return
        valid_until = min(expires_at, self.clock() + self.seconds)
        with self._lock:
            if generation != self._generation:
                return
            self._entries.pop(digest, None)  # re-inserted last: the oldest stay first
            self._entries[digest] = _Entry(value, valid_until)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def invalidate(self) -> None:
        """Forget everything, and refuse entries read before now (call after a revocation)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["TokenCache"]
