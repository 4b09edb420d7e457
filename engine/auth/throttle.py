"""Throttling of repeated sign-in failures, in process memory.

Each key (a user name, a client address) keeps the times of its recent failures; once a key has
``limit`` failures inside ``window`` seconds, further attempts are refused without checking the
password until the oldest of those failures leaves the window. A success clears the user name's
failures (not the address's, so one valid account cannot reset an address that guesses others).

In memory by design, and therefore per process: a restart forgets it and two server processes
count separately. That bounds guessing to ``limit`` per window per process, which is enough
against online guessing when passwords are hashed with a memory-hard KDF; a shared limit for a
fleet belongs in front of it (a proxy). The number of keys kept is bounded, oldest dropped.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    """Counts failures per key in a sliding window; thread-safe."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float],
        max_keys: int = 100_000,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again; 0 when it may try now."""
        now = self.clock()
        with self._lock:
            times = self._recent(key, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def fail(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.limit)
                while len(self._failures) > self.max_keys:
                    self._failures.popitem(last=False)
            times.append(now)
            self._failures.move_to_end(key)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        return times


__all__ = ["FailureThrottle"]
