"""SQLite's WAL checkpoints, run beside the writers instead of inside their commits.

In WAL mode a commit appends the pages it changed to the ``-wal`` file; a *checkpoint* copies
them back into the database file so that the log can start again from its beginning. Left to
itself, SQLite runs one inside the commit that takes the log past 1,000 pages: that commit, and
so that trigger's accept or that step, pays for copying every page of the forty or so runs
before it and for the two ``fsync`` calls around the copy. Profiled one linear10 run at a time,
the two commits of a run cost 276 µs, of which writing their own pages is about 125.

SQLite's documentation names the remedy: checkpoint in a thread of its own. A ``Checkpointer``
is that thread, one per file database in a process. A commit only notes that the log grew; the
thread, woken by the first commit after it went idle, runs a ``PASSIVE`` checkpoint, which
takes no lock that a writer or a reader waits on, then waits ``interval`` before the next, so
that a page written many times in that interval is copied once. The copying runs with the
interpreter lock released, on another core where there is one.

SQLite starts the log again only after a checkpoint that copied all of it, and a passive one
that commits keep overtaking never does. So once the log is ``RESTART_PAGES`` long, the thread
copies the rest while holding the process's write lock: the pages of the last interval, a
pause of a few milliseconds for this process's writers every few thousand pages, after which
the next writer starts the log from its beginning. The connections keep SQLite's own
automatic checkpoint as a backstop, at ``FALLBACK_PAGES`` instead of 1,000, for a thread that
falls behind and for writers in other processes, which the write lock does not hold back.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

_log = logging.getLogger(__name__)

# A log this long is copied to its end under the write lock, so that the next writer restarts it.
RESTART_PAGES = 4_000
# A commit that takes the log this long checkpoints itself (SQLite's wal_autocheckpoint).
FALLBACK_PAGES = 10_000
# The least time between two background checkpoints while commits keep coming.
INTERVAL_S = 0.02
# A thread that saw no commit for this long ends and closes its connection; the next commit
# starts another. An idle process holds no thread and no connection for it.
IDLE_S = 1.0


class Checkpointer:
    """A daemon thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` after commits.

    ``connect`` gives the thread a DB-API connection of its own in autocommit mode, opened
    when a commit wakes the thread and closed when the thread ends: at ``close``, or after
    ``idle`` seconds without a commit. ``write_lock`` is the lock this process's writers hold
    while they write (``Database.write``). A process forked from one whose thread was running
    (a server that opens its engine before forking its workers) starts a thread of its own
    at its first commit, with a connection of its own: threads do not survive a fork, and
    the parent's connection stays the parent's.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        write_lock: threading.Lock | None = None,
        interval: float = INTERVAL_S,
        idle: float = IDLE_S,
    ) -> None:
        self._connect = connect
        self._write_lock = write_lock
        self._interval = interval
        self._idle = idle
        self._grown = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.checkpoints = 0  # checkpoints run, as tests watch them
        _live.add(self)

    @property
    def running(self) -> bool:
        """Whether the thread is up (it ends after ``idle`` seconds without a commit)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def committed(self) -> None:
        """Note that a commit grew the log; wakes the thread, starting it if none runs.

        Cheap on the committing thread: no lock unless the thread has to be (re)started. A
        commit that races the idle thread's end wakes nobody; its pages wait in the log, where
        readers find them, until the next commit's checkpoint.
        """
        if self._thread is None:
            self._start()
        if not self._grown.is_set():
            self._grown.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint in progress, if any) and close its connection."""
        self._closing.set()
        self._grown.set()
        with self._start_lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _forked(self) -> None:
        """In a forked child: forget the parent's thread and the state of its locks.

        The thread's connection was its own (the parent's, still in use there); the child's
        first commit starts a thread that opens another.
        """
        closing = self._closing.is_set()
        self._thread = None
        self._start_lock = threading.Lock()
        self._grown = threading.Event()
        self._closing = threading.Event()
        if closing:
            self._closing.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closing.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="treeflow-sqlite-checkpoints", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        connection: Any = None  # this thread's own: a thread started later opens another
        try:
            while self._grown.wait(self._idle) or not self._retire():
                if self._closing.is_set():
                    return
                self._grown.clear()
                connection, pages = self._checkpoint(connection, nullcontext())
                if pages >= RESTART_PAGES and self._write_lock is not None:
                    # Complete under the lock: the next writer starts the log again.
                    connection, _ = self._checkpoint(connection, self._write_lock)
                if self._closing.wait(self._interval):
                    return
        finally:
            if connection is not None:
                connection.close()

    def _retire(self) -> bool:
        """After ``idle`` seconds without a commit: end the thread, unless a commit just came."""
        with self._start_lock:
            if self._grown.is_set():
                return False
            self._thread = None
            return True

    def _checkpoint(
        self, connection: Any, holding: AbstractContextManager[object]
    ) -> tuple[Any, int]:
        """One passive checkpoint, inside ``holding``: the connection and the log's length.

        The copy reaches the end of the log as it was when the checkpoint began; commits that
        came meanwhile are left for the next one. A checkpoint that fails is logged and its
        connection dropped (None); nothing is lost by it: its pages stay in the log, where
        readers find them, for the next checkpoint.
        """
        try:
            connection = connection or self._connect()
            cursor = connection.cursor()
            try:
                with holding:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    _busy, pages, _copied = cursor.fetchone()
            finally:
                cursor.close()
        except Exception:
            _log.warning("a background WAL checkpoint failed", exc_info=True)
            if connection is not None:
                connection.close()
            return None, 0
        self.checkpoints += 1
        return connection, int(pages)


# Every checkpointer of this process, for the fork hook below.
_live: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child inherits the checkpointers but none of their threads."""
    for checkpointer in list(_live):
        checkpointer._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["FALLBACK_PAGES", "IDLE_S", "INTERVAL_S", "RESTART_PAGES", "Checkpointer"]
