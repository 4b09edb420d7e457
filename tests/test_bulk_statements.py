"""The driver-level statements (``engine.store.bulk``) keep every value and refuse as SQL does.

Writes: on PostgreSQL a whole-row INSERT of several rows goes as one COPY, below that as
executemany; on SQLite always as executemany. Each way must store exactly what it was given (JSON
text with the characters COPY's text format escapes, NULLs, booleans, floats) and, when a row is
refused, raise ``IntegrityError`` with nothing of the batch kept.

Reads by a list of ids (``IdListStatement``: one parameter, a JSON array on SQLite, an array on
PostgreSQL) must return what SQLAlchemy's own ``IN`` query returns, value for value, for any
number of ids, including more than SQLite allows as separate parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine import Engine
from engine.store.bulk import COPY_MIN_ROWS, BulkStatement, IdListStatement, insert_all
from engine.store.tables import tasks

from .support import TWO_STEPS, TWO_STEPS_KEY

INSERT_TASKS = insert_all(tasks)
INSERT_TASKS_RETURNING = BulkStatement(
    tasks.insert()
    .values({column.name: sa.bindparam(column.name) for column in tasks.columns})
    .returning(tasks.c.id),
    json_names=[c.name for c in tasks.columns if isinstance(c.type, sa.JSON)],
)
TASKS_OF_RUNS = IdListStatement(
    lambda one_of: sa.select(tasks).where(one_of(tasks.c.run_id)).order_by(tasks.c.id)
)
# What COPY's text format must escape, and what JSON must keep: tab, newline, backslash, \N.
AWKWARD = 'tab\there, line\nbreak, back\\slash, "quoted", \\N, \r, naïve, 日本, 🚀'


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        yield engine


def _run_id(engine: Engine) -> int:
    return engine.create_start(**TWO_STEPS_KEY, source_id="bulk").run_id


def _task(run_id: int, number: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"bulk{number:028d}",
        "run_id": run_id,
        "node": f"Node {number}\t{AWKWARD}",
        "handler_id": "utilities_echo_v1",
        "loop_index": "/",
        "status": "Closed",
        "results": {"output": f"{AWKWARD} {number}", "nested": [1, 2.5, None, True]},
        "token": None,
        "arrived": ["Start", AWKWARD],
        "completing": number % 2 == 0,
        "attempt": number + 1,
        "last_error": None if number % 3 else f"error {number}: {AWKWARD}",
        "created_at": 1_800_000_000.125 + number,
        "updated_at": 1_800_000_000.5 + number,
    }
    return {**row, **changes}


def _stored(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    query = sa.select(tasks).where(tasks.c.run_id == run_id, tasks.c.id.like("bulk%"))
    with engine.database.read() as connection:
        return [dict(row) for row in connection.execute(query.order_by(tasks.c.id)).mappings()]


@pytest.mark.parametrize("count", [1, COPY_MIN_ROWS - 1, COPY_MIN_ROWS, 50])
def test_rows_written_in_bulk_read_back_as_given(engine: Engine, count: int) -> None:
    run_id = _run_id(engine)
    rows = [_task(run_id, number) for number in range(count)]
    with engine.database.write() as connection:
        assert INSERT_TASKS.execute(connection, rows) == count
    assert _stored(engine, run_id) == rows


@pytest.mark.parametrize("count", [2, COPY_MIN_ROWS + 2])
def test_a_duplicate_key_refuses_the_whole_batch(engine: Engine, count: int) -> None:
    run_id = _run_id(engine)
    rows = [_task(run_id, number) for number in range(count - 1)]
    rows.append(_task(run_id, 0, node="the same id again"))
    with pytest.raises(sa.exc.IntegrityError), engine.database.write() as connection:
        INSERT_TASKS.execute(connection, rows)
    assert _stored(engine, run_id) == []


@pytest.mark.parametrize("count", [2, COPY_MIN_ROWS + 2])
def test_a_row_of_a_missing_run_refuses_the_whole_batch(engine: Engine, count: int) -> None:
    run_id = _run_id(engine)
    rows = [_task(run_id, number) for number in range(count - 1)]
    rows.append(_task(run_id + 1000, count))
    with pytest.raises(sa.exc.IntegrityError), engine.database.write() as connection:
        INSERT_TASKS.execute(connection, rows)
    assert _stored(engine, run_id) == []
    assert _stored(engine, run_id + 1000) == []


def test_the_transaction_goes_on_after_a_bulk_write(engine: Engine) -> None:
    """A COPY leaves the connection in the caller's transaction: later statements see its rows
    and a rollback takes them back."""
    run_id = _run_id(engine)
    rows = [_task(run_id, number) for number in range(COPY_MIN_ROWS + 1)]

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), engine.database.write() as connection:
        INSERT_TASKS.execute(connection, rows)
        seen = connection.execute(
            sa.select(sa.func.count()).where(tasks.c.run_id == run_id, tasks.c.id.like("bulk%"))
        ).scalar_one()
        assert seen == len(rows)
        raise Rollback
    assert _stored(engine, run_id) == []


def _runs_with_tasks(engine: Engine, count: int) -> list[int]:
    run_ids = [_run_id(engine) for _ in range(count)]
    rows = [_task(run_id, 10 * index + n) for index, run_id in enumerate(run_ids) for n in range(3)]
    with engine.database.write() as connection:
        INSERT_TASKS.execute(connection, rows)
    return run_ids


@pytest.mark.parametrize("asked", [0, 1, 3, 7])
def test_rows_read_by_a_list_of_ids_are_what_sqlalchemy_reads(engine: Engine, asked: int) -> None:
    run_ids = _runs_with_tasks(engine, 7)
    wanted = run_ids[:asked]
    with engine.database.read() as connection:
        found = TASKS_OF_RUNS.rows(connection, wanted)
        expected = [
            dict(row)
            for row in connection.execute(
                sa.select(tasks).where(tasks.c.run_id.in_(wanted)).order_by(tasks.c.id)
            ).mappings()
        ]
    assert found == expected
    assert len(found) == 3 * asked
    assert {type(row["completing"]) for row in found} <= {bool}
    assert all(row["results"]["nested"] == [1, 2.5, None, True] for row in found)


def test_a_list_of_ids_may_be_longer_than_sqlites_parameter_limit(engine: Engine) -> None:
    run_ids = _runs_with_tasks(engine, 2)
    asked = [*range(-40_000, 0), run_ids[1], run_ids[1], 10**9]  # unknown ids, a repeat
    with engine.database.read() as connection:
        found = TASKS_OF_RUNS.rows(connection, asked)
    assert {row["run_id"] for row in found} == {run_ids[1]}
    assert len(found) == 3


@pytest.mark.parametrize("count", [1, 2, 40])
def test_rows_inserted_each_return_their_ids_in_order(engine: Engine, count: int) -> None:
    """``BulkStatement.each``: the first RETURNING column for each row given, in the order
    given (on PostgreSQL a pipelined executemany, one round trip)."""
    run_id = _run_id(engine)
    rows = [_task(run_id, number) for number in reversed(range(count))]

    with engine.database.write() as connection:
        returned = INSERT_TASKS_RETURNING.each(connection, rows)

    assert returned == [row["id"] for row in rows]
    with engine.database.read() as connection:
        stored = connection.execute(
            sa.select(tasks.c.id, tasks.c.node, tasks.c.results).where(tasks.c.run_id == run_id)
        ).all()
    assert {row.id: (row.node, row.results) for row in stored if row.id.startswith("bulk")} == {
        row["id"]: (row["node"], row["results"]) for row in rows
    }
