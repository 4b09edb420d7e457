"""Which engine process runs the scheduler: the holder of a PostgreSQL advisory lock.

APScheduler 3's job store may not be shared by several running schedulers, so of the engine
processes on one PostgreSQL database only the one holding a session-level advisory lock runs
one. The lock lives on a connection of its own (outside the pool, in autocommit), held as long
as that connection is open: when the holder dies, PostgreSQL ends its session and frees the
lock, and another process's next attempt takes it. The lock's key is made from the database
and schema names, so engines on different schemas of one server do not exclude each other.

SQLite is one engine process by design (ARCHITECTURE.md, the store): the process that runs the
scheduler just runs it, and there is nothing to elect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from engine.store.database import Database

LOCK_CLASS = 7263542  # the advisory lock's first key: "treeflow's scheduler"
_KEY = "hashtext(current_database() || '.' || current_schema())"
_TRY = sa.text(f"SELECT pg_try_advisory_lock({LOCK_CLASS}, {_KEY})")
_ALIVE = sa.text("SELECT 1")


class Leadership:
    """Take, check and give up the scheduler's lock (always granted on SQLite)."""

    def __init__(self, database: Database, *, logger: logging.Logger) -> None:
        self.database = database
        self.logger = logger
        self._lock_engine: sa.Engine | None = None
        self._connection: Connection | None = None
        self.backend_pid: int | None = None  # the PostgreSQL session holding the lock

    @property
    def exclusive(self) -> bool:
        """Whether there is a lock to win (PostgreSQL) or the process simply leads (SQLite)."""
        return self.database.is_postgresql

    def acquire(self) -> bool:
        """Try once, without waiting: True if this process now holds the lock.

        The connection is kept between attempts, so a process waiting to take over does not
        open a new session every poll.
        """
        if not self.exclusive:
            return True
        if self._connection is None:
            if self._lock_engine is None:
                self._lock_engine = sa.create_engine(self.database.url, poolclass=NullPool)
            connection = self._lock_engine.connect()
            self._connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                # A check must answer quickly: a stalled server is as good as a lost lock.
                self._connection.execute(sa.text("SET statement_timeout = '5s'"))
            except BaseException:
                self._drop()
                raise
        try:
            won = bool(self._connection.execute(_TRY).scalar_one())
            pid = self._connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        except BaseException:
            self._drop()
            raise
        if won:
            self.backend_pid = int(pid)
        return won

    def held(self) -> bool:
        """Whether the lock's connection is still alive (a session lock lasts as long)."""
        if not self.exclusive:
            return True
        if self._connection is None or self.backend_pid is None:
            return False
        try:
            self._connection.execute(_ALIVE)
        except sa.exc.DBAPIError as exc:
            self.logger.warning("the scheduler's lock connection failed: %s", exc)
            self._drop()
            return False
        return True

    def release(self) -> None:
        self._drop()
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self.backend_pid = None
        if connection is not None:
            try:
                connection.close()  # ends the session, which frees the lock
            except sa.exc.DBAPIError:
                connection.invalidate()


@dataclass(frozen=True)
class LockHolder:
    """The PostgreSQL session holding the scheduler's lock (``pg_stat_activity``'s view of it)."""

    pid: int
    application_name: str
    client_addr: str | None
    backend_start: float | None


# A lock of two int4 keys shows in pg_locks as classid, objid (oids: the second key's bits
# read unsigned) and objsubid 2.
_HOLDER = sa.text(
    "SELECT a.pid, a.application_name, host(a.client_addr), "
    "extract(epoch FROM a.backend_start) "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = :lock_class AND l.objid::bigint = (:key)::bigint & 4294967295 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
).bindparams(lock_class=LOCK_CLASS)
_KEY_NOW = sa.text(f"SELECT {_KEY}")


def lock_holder(connection: Connection) -> LockHolder | None:
    """Who holds the scheduler's lock of this database and schema, on PostgreSQL; None when
    nobody does, or on SQLite (where the process that starts its engine runs the scheduler)."""
    if connection.dialect.name != "postgresql":
        return None
    key = connection.execute(_KEY_NOW).scalar_one()
    row = connection.execute(_HOLDER, {"key": key}).first()
    if row is None:
        return None
    pid, application_name, client_addr, backend_start = row
    return LockHolder(
        pid=int(pid),
        application_name=str(application_name or ""),
        client_addr=client_addr,
        backend_start=None if backend_start is None else float(backend_start),
    )


__all__ = ["LOCK_CLASS", "Leadership", "LockHolder", "lock_holder"]
