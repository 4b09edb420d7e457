"""SQLite write transactions, begun and ended at the driver: what commits, what is rolled back.

``Database.write`` on SQLite begins with ``BEGIN IMMEDIATE`` on the driver and commits there;
a statement run through SQLAlchemy inside the block joins that transaction. Whichever way a
block writes, it is kept whole or not at all, and the writer is usable afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.store.database import Database


@pytest.fixture(params=["file", "memory"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}" if request.param == "file" else None)
    with database.write() as connection:
        connection.execute(sa.text("CREATE TABLE parents (id INTEGER PRIMARY KEY)"))
        connection.execute(
            sa.text(
                "CREATE TABLE children (id INTEGER PRIMARY KEY,"
                " parent_id INTEGER NOT NULL REFERENCES parents (id))"
            )
        )
    yield database
    database.dispose()


def driver(connection: sa.Connection) -> Any:
    return connection.connection.driver_connection


def parents(database: Database) -> list[int]:
    with database.read() as connection:
        return list(connection.execute(sa.text("SELECT id FROM parents ORDER BY id")).scalars())


def test_writes_at_the_driver_and_through_sqlalchemy_commit_together(database: Database) -> None:
    with database.write() as connection:
        driver(connection).execute("INSERT INTO parents (id) VALUES (1)")
    with database.write() as connection:
        connection.execute(sa.text("INSERT INTO parents (id) VALUES (2)"))
    with database.write() as connection:
        driver(connection).execute("INSERT INTO parents (id) VALUES (3)")
        connection.execute(sa.text("INSERT INTO parents (id) VALUES (4)"))
        assert connection.in_transaction()  # SQLAlchemy joined the driver's transaction
    assert parents(database) == [1, 2, 3, 4]


@pytest.mark.parametrize("through", ["driver", "sqlalchemy"])
def test_a_block_that_raises_keeps_nothing_and_the_next_write_commits(
    database: Database, through: str
) -> None:
    with pytest.raises(RuntimeError, match="the block failed"), database.write() as connection:
        if through == "driver":
            driver(connection).execute("INSERT INTO parents (id) VALUES (1)")
        else:
            connection.execute(sa.text("INSERT INTO parents (id) VALUES (1)"))
        raise RuntimeError("the block failed")
    assert parents(database) == []
    with database.write() as connection:
        driver(connection).execute("INSERT INTO parents (id) VALUES (2)")
    assert parents(database) == [2]


def test_a_refused_statement_raises_sqlalchemys_error_and_keeps_nothing(
    database: Database,
) -> None:
    with pytest.raises(sa.exc.IntegrityError), database.write() as connection:
        connection.execute(sa.text("INSERT INTO parents (id) VALUES (1)"))
        connection.execute(sa.text("INSERT INTO children (id, parent_id) VALUES (1, 99)"))
    assert parents(database) == []


@pytest.mark.parametrize("through", ["driver", "sqlalchemy"])
def test_a_commit_refused_raises_sqlalchemys_error_keeps_nothing_and_the_writer_goes_on(
    database: Database, through: str
) -> None:
    # Deferred foreign keys are checked at COMMIT, so the commit itself is what fails.
    refused = pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY")
    with refused, database.write() as connection:
        raw = driver(connection)
        raw.execute("PRAGMA defer_foreign_keys=ON")
        raw.execute("INSERT INTO parents (id) VALUES (1)")
        if through == "driver":
            raw.execute("INSERT INTO children (id, parent_id) VALUES (1, 99)")
        else:
            connection.execute(sa.text("INSERT INTO children (id, parent_id) VALUES (1, 99)"))
    assert parents(database) == []
    with database.write() as connection:
        assert not driver(connection).execute("PRAGMA defer_foreign_keys").fetchone()[0]
        driver(connection).execute("INSERT INTO parents (id) VALUES (2)")
    assert parents(database) == [2]
