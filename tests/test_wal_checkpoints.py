"""SQLite's WAL checkpoints run in a thread beside the writers, and the log stays bounded."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store.checkpoints import RESTART_PAGES, Checkpointer
from engine.store.database import Database

from .support import wait_for

THREAD_NAME = "treeflow-sqlite-checkpoints"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with database.write() as connection:
        connection.execute(sa.text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)"))
    yield database
    database.dispose()


def insert_blob(database: Database, size: int) -> None:
    with database.write() as connection:
        connection.execute(
            sa.text("INSERT INTO blobs (body) VALUES (:body)"), {"body": b"x" * size}
        )


def connect(path: Path) -> sqlite3.Connection:
    """A plain connection in autocommit mode, usable from any thread (the checkpointer's)."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def wal_writer(path: Path, *, own_checkpoints: bool = True) -> sqlite3.Connection:
    """A writer on a WAL file; without ``own_checkpoints`` no commit of it copies the log."""
    writer = connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    if not own_checkpoints:
        writer.execute("PRAGMA wal_autocheckpoint=0")
    return writer


def checkpointer_threads() -> int:
    return sum(thread.name == THREAD_NAME for thread in threading.enumerate())


def test_committed_pages_reach_the_database_file_without_a_commit_checkpointing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    writer = wal_writer(path, own_checkpoints=False)  # no commit copies anything itself
    checkpointer = Checkpointer(lambda: connect(path))
    try:
        writer.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)")
        for _ in range(20):
            writer.execute("INSERT INTO blobs (body) VALUES (?)", (b"x" * 1_000,))
        checkpointer.committed()
        wait_for(lambda: checkpointer.checkpoints == 1)

        # The database file alone, without its log, holds every committed row.
        copy = tmp_path / "file-only.db"
        shutil.copyfile(path, copy)
        with sqlite3.connect(copy) as connection:
            assert connection.execute("SELECT count(*) FROM blobs").fetchone() == (20,)
    finally:
        checkpointer.close()
        writer.close()


def test_a_database_checkpoints_after_its_commits(database: Database) -> None:
    checkpointer = database.checkpointer
    assert checkpointer is not None
    already = checkpointer.checkpoints
    insert_blob(database, 1_000)
    wait_for(lambda: checkpointer.checkpoints > already)


def test_the_thread_ends_when_idle_and_the_next_commit_starts_it_again(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    writer = wal_writer(path)
    opened: list[sqlite3.Connection] = []

    def open_one() -> sqlite3.Connection:
        opened.append(connect(path))
        return opened[-1]

    checkpointer = Checkpointer(open_one, interval=0.01, idle=0.05)
    try:
        writer.execute("CREATE TABLE t (n INTEGER)")
        checkpointer.committed()
        wait_for(lambda: checkpointer.checkpoints == 1)
        wait_for(lambda: not checkpointer.running)  # ended after idle seconds without a commit
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            opened[0].execute("SELECT 1")  # and closed its connection

        writer.execute("INSERT INTO t VALUES (1)")
        checkpointer.committed()
        wait_for(lambda: checkpointer.checkpoints == 2)
        assert len(opened) == 2
    finally:
        checkpointer.close()
        writer.close()
    assert not checkpointer.running


def test_a_forked_child_checkpoints_with_a_thread_and_connection_of_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fork.db"
    opened: list[tuple[int, sqlite3.Connection]] = []

    def open_one() -> sqlite3.Connection:
        opened.append((os.getpid(), connect(path)))
        return opened[-1][1]

    writer = wal_writer(path)
    writer.execute("CREATE TABLE t (n INTEGER)")
    writer.close()
    checkpointer = Checkpointer(open_one)
    checkpointer.committed()
    wait_for(lambda: checkpointer.checkpoints == 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking with threads
        pid = os.fork()
    if pid == 0:  # the child: the parent's thread and connection did not come with it
        code = 1
        try:
            child_writer = connect(path)
            child_writer.execute("INSERT INTO t VALUES (1)")
            checkpointer.committed()
            wait_for(lambda: checkpointer.checkpoints == 2)
            code = 0 if opened[-1][0] == os.getpid() else 2
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        checkpointer.committed()  # the parent's checkpoints go on as before
        wait_for(lambda: checkpointer.checkpoints == 2)
    finally:
        checkpointer.close()


def test_dispose_stops_the_thread_and_a_disposed_database_starts_none(tmp_path: Path) -> None:
    before = checkpointer_threads()
    database = Database(f"sqlite:///{tmp_path / 'dispose.db'}")
    with database.write() as connection:
        connection.execute(sa.text("CREATE TABLE t (n INTEGER)"))
    checkpointer = database.checkpointer
    assert checkpointer is not None
    wait_for(lambda: checkpointer.checkpoints >= 1)
    database.dispose()
    assert not checkpointer.running
    assert checkpointer_threads() == before
    checkpointer.committed()  # a commit noted after close starts nothing
    assert not checkpointer.running


def test_only_a_sqlite_file_has_a_checkpointer(database_url: str) -> None:
    for url in (None, database_url):
        database = Database(url)
        try:
            has_log = url is not None and url.startswith("sqlite")
            assert (database.checkpointer is not None) is has_log
        finally:
            database.dispose()


def test_the_log_starts_again_while_commits_keep_coming(tmp_path: Path) -> None:
    """Commits that overtake every passive checkpoint still let the log start from its top.

    SQLite's own checkpoint is off here, so only the thread's copy under the write lock can
    make the log start again; without it the log would hold all 48,000 pages written.
    """
    path = tmp_path / "busy.db"
    page = 4096
    writer = wal_writer(path, own_checkpoints=False)
    writer.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)")
    write_lock = threading.Lock()
    checkpointer = Checkpointer(lambda: connect(path), write_lock=write_lock)
    log = tmp_path / "busy.db-wal"
    largest = 0
    try:
        for _ in range(3_000):  # 16 pages a commit
            with write_lock:
                writer.execute("INSERT INTO blobs (body) VALUES (?)", (b"x" * 16 * page,))
            checkpointer.committed()
            largest = max(largest, log.stat().st_size)
    finally:
        checkpointer.close()
        writer.close()
    assert checkpointer.checkpoints > 1
    assert RESTART_PAGES * page < largest < 24_000 * page
