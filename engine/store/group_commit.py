"""Group commit for accepts: concurrent callers share one transaction, each answered once durable.

A createStart is one small transaction, and what it costs beyond its own statements is the
transaction: taking SQLite's write lock and committing (on PostgreSQL with
``synchronous_commit=on``, waiting for the commit's flush, about a millisecond). When several
threads accept at once (a server's request threads, a host's threads), the first to arrive
becomes the group's leader: it takes every accept waiting at that moment, runs them one after
the other in one transaction and commits once; the others wait, and each returns (or raises)
only after that commit, so no caller hears of a trigger that is not durable. Accepts that arrive
while a group commits form the next group. A caller alone (one thread) is a group of one, written
exactly as without grouping.

In a group of more than one, each caller's part runs in a savepoint of its own, so what one
caller's part raises (its tree became inactive, a key it races another process for) rolls back
that part only and is raised to that caller alone; the others commit. Inputs are checked before a
caller joins (``Engine.create_start``), so a part fails only on what the database says. If the
transaction itself fails (the database went away, the commit was refused), every caller of the
group gets that exception: none of their triggers was written.

Idempotency keys keep their contract (``Database.write_once``): a part looks for an earlier
trigger with its key first, in the group's transaction, so a repeat within one group finds the
first caller's row and is answered with it, and a key that a concurrent transaction elsewhere
committed first loses the unique index, rolls back to its savepoint and finds the winner's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.database import Database

_T = TypeVar("_T")


@dataclass
class _Part:
    """One caller's work in a group, and what it came to."""

    work: Callable[[Connection], Any]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Write-once accepts of concurrent callers, committed together; shared by threads."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._turn = threading.Condition()
        self._waiting: list[_Part] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """Callers waiting for the group being committed to end (they form the next group)."""
        with self._turn:
            return len(self._waiting)

    def write_once(
        self,
        key: str | None,
        *,
        find: Callable[[Connection], _T | None],
        write: Callable[[Connection], _T],
    ) -> tuple[_T, bool]:
        """``Database.write_once``, in a transaction shared with the callers writing meanwhile."""

        def alone(connection: Connection) -> tuple[_T, bool]:
            if key is not None:
                found = find(connection)
                if found is not None:
                    return found, False
            return write(connection), True

        def in_group(connection: Connection) -> tuple[_T, bool]:
            for attempt in range(2):
                try:
                    with connection.begin_nested():
                        return alone(connection)
                except sa.exc.IntegrityError:  # a key another transaction committed first
                    if key is None or attempt:
                        raise
            raise AssertionError("unreachable: the second attempt returned or raised")

        part = _Part(in_group)
        with self._turn:
            self._waiting.append(part)
            while self._leading and not part.done:
                self._turn.wait()
            if not part.done:  # nobody leads: this caller commits everything waiting
                self._leading = True
                group, self._waiting = self._waiting, []
        if not part.done:
            try:
                if len(group) == 1:  # written as without grouping
                    return self.database.write_once(key, find=find, write=write)
                self._commit(group)
            finally:
                with self._turn:
                    self._leading = False
                    for member in group:
                        member.done = True
                    self._turn.notify_all()
        if part.error is not None:
            raise part.error
        return cast("tuple[_T, bool]", part.result)

    def _commit(self, group: list[_Part]) -> None:
        """Each part in a savepoint, one commit; a failed transaction is every part's error."""
        try:
            with self.database.write() as connection:
                for member in group:
                    try:
                        member.result = member.work(connection)
                    except Exception as exc:  # this caller's alone: its savepoint rolled back
                        member.error = exc
                        if connection.invalidated:
                            raise
        except Exception as exc:  # nothing of the group was written
            for member in group:
                if member.error is None:
                    member.result, member.error = None, exc


__all__ = ["GroupCommit"]
