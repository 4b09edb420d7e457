"""Connections and transactions, per dialect.

SQLite (the embedded default) says "database is locked" under load unless writers are
disciplined: every connection runs in WAL mode with a busy timeout, write transactions start
with ``BEGIN IMMEDIATE`` so they take the write lock before reading, and within one process a
lock lets one writer at a time through, so threads queue in Python instead of spinning on the
busy handler. ``synchronous=NORMAL`` survives any crash of the process (WAL); pass
``?synchronous=FULL`` in the URL to survive power loss too. The log's checkpoints run in a
thread beside the writers (``checkpoints.py``), not inside their commits.

An in-memory SQLite database (``Engine()`` with no URL) lives in one connection, shared by all
threads under the same lock.

PostgreSQL needs none of this: row locks and ``SKIP LOCKED`` do the work (see ``queue.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from engine.store import instance_tables as _instance_tables  # noqa: F401  (registers them)
from engine.store import request_keys as _request_keys  # noqa: F401  (registers its table)
from engine.store import schedules as _schedules  # noqa: F401  (registers its tables)
from engine.store import tables as _tables  # noqa: F401  (registers the tables)
from engine.store.bulk import dumps
from engine.store.checkpoints import FALLBACK_PAGES, Checkpointer

_T = TypeVar("_T")
MEMORY_URL = "sqlite://"
# The same codec as the driver-level writes (engine.store.bulk), for every JSON column read.
_JSON_CODEC: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": orjson.loads}
SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """One SQLAlchemy engine plus the locking discipline its dialect needs."""

    def __init__(self, url: str | None = None, *, pool_size: int = 10) -> None:
        self.url = make_url(url or MEMORY_URL)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine()
        elif self.dialect == "postgresql":
            self.engine = sa.create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                **_JSON_CODEC,
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self._read_lock = self._write_lock if self.memory else None
        self._writer: Connection | None = None  # SQLite: the one writer, kept open
        self._checkpointer = (
            Checkpointer(self.engine.raw_connection, write_lock=self._write_lock)
            if self.dialect == "sqlite" and not self.memory
            else None
        )

    @property
    def checkpointer(self) -> Checkpointer | None:
        """The thread that checkpoints a SQLite file's log; None for memory and PostgreSQL."""
        return self._checkpointer

    @property
    def memory(self) -> bool:
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def _sqlite_engine(self) -> sa.Engine:
        query = dict(self.url.query)
        synchronous = str(query.pop("synchronous", "NORMAL")).upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unsupported synchronous={synchronous!r}")
        url = self.url.set(query=query)
        if self.memory:
            engine = sa.create_engine(
                url,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                **_JSON_CODEC,
            )
        else:
            engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **_JSON_CODEC)

        @sa.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            if not self.memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            driver: Any = connection.connection.driver_connection  # sqlite3's own connection
            if driver.in_transaction:  # write() began it at the driver; SQLAlchemy joins it
                return
            write = connection.get_execution_options().get("treeflow_write", False)
            driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def create_schema(self) -> None:
        """Create missing tables and indexes, unversioned: for scratch databases (benchmarks).

        An engine's database goes through ``engine.store.schema.prepare`` instead, which also
        stamps its revision and refuses a database of another release.
        """
        with self.write() as connection:
            if self.is_postgresql:  # engine processes starting together create it once
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(7263541)"))
            SQLModel.metadata.create_all(connection)

    @contextmanager
    def migration(self) -> Iterator[Connection]:
        """A write transaction for schema revisions, on a connection of its own.

        On SQLite, foreign keys are off on it (they cannot be switched inside a transaction):
        rebuilding a table in batch mode drops the old one, which the tables referencing it
        would otherwise refuse. The caller checks them before the block ends
        (``PRAGMA foreign_key_check``); the connection is closed afterwards, never pooled.
        """
        if self._write_lock is None or self.memory:  # a memory database is always new
            with self.write() as connection:
                yield connection
            return
        with self._write_lock:
            connection = self.engine.connect().execution_options(treeflow_write=True)
            driver: Any = connection.connection.driver_connection
            try:
                driver.execute("PRAGMA foreign_keys=OFF")
                with connection.begin():
                    yield connection
            finally:
                connection.invalidate()  # never back into the pool with foreign keys off
                connection.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        On SQLite only one transaction writes at a time anyway, so the process keeps a single
        writer connection open under the write lock instead of checking one out per
        transaction; a connection that failed is discarded and the next write opens a new one.
        Its transaction is begun and ended at the driver (``BEGIN IMMEDIATE``, ``COMMIT``):
        SQLAlchemy's transaction object, its events and its bookkeeping cost about as much as
        the two statements themselves, on every createStart and every step. A statement run
        through SQLAlchemy inside the block joins the driver's transaction (``_begin``), and
        the block's end commits or rolls back through SQLAlchemy then, so that its
        connection's state stays true.
        """
        if self._write_lock is None:
            with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        with self._write_lock:
            if self._writer is None or self._writer.invalidated or self._writer.closed:
                self._writer = self.engine.connect().execution_options(treeflow_write=True)
            writer = self._writer
            driver: Any = writer.connection.driver_connection
            try:
                _at_driver(driver.execute, "BEGIN IMMEDIATE")
                yield writer
                _end(writer, driver, commit=True)
            except BaseException:  # the block's error, or the commit's: nothing is kept
                _end(writer, driver, commit=False)
                if writer.invalidated:
                    writer.close()
                    self._writer = None
                raise
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def write_once(
        self,
        key: str | None,
        *,
        find: Callable[[Connection], _T | None],
        write: Callable[[Connection], _T],
    ) -> tuple[_T, bool]:
        """Run ``write`` in a write transaction, once per idempotency ``key``.

        With a key, ``find`` first looks for what an earlier call with it wrote, and returns
        that instead: ``(found, False)``. Two calls racing with one key may both find nothing
        and both write; the unique index on the key refuses the second insert, whose
        transaction then rolls back and looks again, and finds the winner's. ``(written,
        True)`` when this call wrote. Without a key, ``write`` runs once and an
        ``IntegrityError`` is the caller's.
        """
        for attempt in range(2):
            try:
                with self.write() as connection:
                    if key is not None:
                        found = find(connection)
                        if found is not None:
                            return found, False
                    return write(connection), True
            except sa.exc.IntegrityError:
                if key is None or attempt:
                    raise
        raise AssertionError("unreachable: the second attempt returned or raised")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction with one consistent snapshot."""
        with (
            self._read_lock or nullcontext(),
            self.engine.connect() as connection,
            connection.begin(),
        ):
            yield connection

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._write_lock is not None:
            with self._write_lock:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
        self.engine.dispose()


def _at_driver(call: Callable[[str], Any], sql: str) -> None:
    """Run a transaction statement on the driver, its error raised as SQLAlchemy's (as a
    statement run through SQLAlchemy raises it), so that callers catch one kind."""
    try:
        call(sql)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


def _end(writer: Connection, driver: Any, *, commit: bool) -> None:
    """Commit or roll back a write begun at the driver: through SQLAlchemy if a statement run
    through it joined the transaction (it then holds the transaction's state), else at the
    driver. A rollback that fails leaves the original error to be raised."""
    if writer.in_transaction():
        if commit:
            writer.commit()
        else:
            with suppress(sa.exc.SQLAlchemyError):
                writer.rollback()
    elif commit:
        _at_driver(lambda _sql: driver.commit(), "COMMIT")
    elif driver.in_transaction:
        with suppress(sqlite3.Error):
            driver.rollback()


__all__ = ["MEMORY_URL", "Database"]
