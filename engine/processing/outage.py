"""Riding out a database that went away: back-off with jitter, and one log line per outage.

A worker whose connection drops (the server restarted, its backend was terminated, the network
failed) must neither die nor flood the log: the first failure is logged with its cause, later
ones of the same outage only at debug level, and the recovery once, with how long it lasted.
Waits grow exponentially with full jitter, so workers that lost the database together do not
reconnect in lockstep.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import sqlalchemy as sa

BASE_DELAY = 0.1
MAX_DELAY = 10.0


def is_database_error(exc: BaseException) -> bool:
    """An error of the database or the connection to it (not a bug of ours)."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )


class Outage:
    """The state of one loop's access to the database; safe to share between threads."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before trying again."""
        database = is_database_error(exc)
        with self._lock:
            self._failures += 1
            first = database and self._since is None
            if first:
                self._since = time.monotonic()
            failures = self._failures
        if not database:
            self.logger.error("%s failed", self.what, exc_info=exc)
        elif first:
            self.logger.warning(
                "%s failed: the database is unreachable (%s); retrying with back-off",
                self.what,
                _cause(exc),
            )
        else:
            self.logger.debug("%s failed again: %s", self.what, _cause(exc))
        ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** min(failures - 1, 16))
        return random.uniform(BASE_DELAY / 2, ceiling)  # jitter, not secrecy

    def succeeded(self) -> None:
        with self._lock:
            since, self._since, self._failures = self._since, None, 0
        if since is not None:
            self.logger.warning("%s works again after %.1fs", self.what, time.monotonic() - since)


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["BASE_DELAY", "MAX_DELAY", "Outage", "is_database_error"]
