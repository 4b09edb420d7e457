"""Driver-level ``executemany`` for the writes every trigger makes.

A step writes a dozen task rows per run. SQLAlchemy's executemany runs every value of every row
through its type processors in Python (JSON columns are serialized there, one call per value),
which measured as the largest single cost of processing a trigger. A :class:`BulkStatement` is
compiled by SQLAlchemy from the table definition, once per dialect, so the SQL text and its
column lists are never written by hand; rows are then handed to the driver's ``executemany`` as
tuples, with JSON columns serialized by orjson, on the driver's own cursor. On PostgreSQL
psycopg sends a Python ``str`` as an untyped literal, so the server stores the text as JSONB.

On PostgreSQL an INSERT of whole rows (:func:`insert_all`) given several rows goes as one
``COPY ... FROM STDIN`` instead: an ``executemany`` is still one statement per row for the
server (parse, plan, executor start and a WAL record each), and a step's dozen task rows a run
measured as the largest share of the server's CPU in a busy worker; COPY writes the same rows
for well under half of it. It runs in the caller's transaction and fails as the INSERT would
(a refused row raises ``IntegrityError``, nothing of the COPY is kept).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect


def dumps(value: Any) -> str:
    """JSON text for a column; orjson is an order of magnitude faster than json here."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class _Copy:
    """``COPY table (columns) FROM STDIN`` and how to turn a row into its values, in order."""

    sql: str
    take: Callable[[Mapping[str, Any]], Any]
    json_at: tuple[int, ...]

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        values = list(self.take(row))
        for index in self.json_at:
            values[index] = dumps(values[index])
        return values


@dataclass(frozen=True)
class _Compiled:
    """A statement's SQL for one dialect and how to turn a row into the driver's parameters."""

    sql: str
    names: tuple[str, ...]
    take: Callable[[Mapping[str, Any]], Any]  # the values in parameter order, in C
    json_at: tuple[int, ...]
    positional: bool  # SQLite's "?" takes a tuple; psycopg's "%(name)s" a dict
    # Values SQLAlchemy binds itself (SQLite's OFFSET 0 after a LIMIT), for every row.
    defaults: Mapping[str, Any]
    copy: _Copy | None = None  # PostgreSQL, whole-row INSERTs: the same rows as one COPY

    def parameters(self, row: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for ``row``: a sequence (a tuple, or a list once JSON values
        were serialized into it, which sqlite3 takes as well) or a dict by name. Called for
        every row of every statement a createStart or a step makes, so it does the least."""
        taken = self.take({**self.defaults, **row} if self.defaults else row)
        values: Sequence[Any] = (taken,) if len(self.names) == 1 else taken
        if self.json_at:
            serialized = list(values)
            for index in self.json_at:
                serialized[index] = dumps(serialized[index])
            values = serialized
        if self.positional:
            return values
        return dict(zip(self.names, values, strict=True))


# Fewer rows than this go as executemany: a COPY's own round trips cost more than it saves.
COPY_MIN_ROWS = 4


class BulkStatement:
    """An INSERT or UPDATE whose every bound value comes from the rows it is executed with.

    ``json_names`` are the parameter names holding JSON documents; their values are serialized
    here. Constants belong in the statement as literals, not as bound parameters. A SELECT that
    every createStart or step runs once (:meth:`first`) goes the same way: SQLAlchemy's own
    execution costs several times the query.
    """

    def __init__(
        self,
        statement: sa.Insert | sa.Update | sa.Select[Any],
        json_names: Sequence[str] = (),
        *,
        copy_into: sa.Table | None = None,
    ) -> None:
        """``copy_into``: the statement inserts whole rows into this table (every column is
        bound from the row of the same name), so PostgreSQL may COPY them instead."""
        self._statement = statement
        self._json_names = frozenset(json_names)
        self._copy_into = copy_into
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            positional = bool(compiled.positional)
            names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
            json_at = tuple(i for i, name in enumerate(names) if name in self._json_names)
            take = operator.itemgetter(*names)
            defaults = {
                name: bind.value for name, bind in compiled.binds.items() if not bind.required
            }
            copy = self._copy(dialect, names) if dialect.name == "postgresql" else None
            found = _Compiled(compiled.string, names, take, json_at, positional, defaults, copy)
            self._compiled[dialect.name] = found
        return found

    def _copy(self, dialect: Dialect, names: tuple[str, ...]) -> _Copy | None:
        if self._copy_into is None:
            return None
        quote = dialect.identifier_preparer
        columns = ", ".join(quote.quote(name) for name in names)
        return _Copy(
            sql=f"COPY {quote.format_table(self._copy_into)} ({columns}) FROM STDIN",
            take=operator.itemgetter(*names),
            json_at=tuple(i for i, name in enumerate(names) if name in self._json_names),
        )

    def scalar(self, connection: Connection, row: Mapping[str, Any]) -> Any:
        """Execute for one row and return the first column of the row it returns (RETURNING)."""
        compiled = self._compile(connection.dialect)
        with _DriverCursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(row))
            return cursor.fetchone()[0]

    def first(self, connection: Connection, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute a SELECT with ``row``'s values and return its first row, if there is one."""
        compiled = self._compile(connection.dialect)
        with _DriverCursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(row))
            found: tuple[Any, ...] | None = cursor.fetchone()
            return found

    def all(self, connection: Connection, row: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute with ``row``'s values and return every row it returns (a SELECT, RETURNING)."""
        compiled = self._compile(connection.dialect)
        with _DriverCursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(row))
            found: list[tuple[Any, ...]] = cursor.fetchall()
            return found

    def each(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Execute once per row and return the first column of the row each returned
        (RETURNING), in order. On PostgreSQL it is one driver call, pipelined: psycopg sends
        every statement before it reads a result, so a batch costs one round trip to the
        server instead of one per row (measured: 22 against 140 µs a row on loopback)."""
        if connection.dialect.name != "postgresql":  # in process: nothing to save
            return [self.scalar(connection, row) for row in rows]
        if not rows:
            return []
        compiled = self._compile(connection.dialect)
        with _DriverCursor(connection, compiled.sql) as cursor:
            parameters = [compiled.parameters(row) for row in rows]
            cursor.executemany(compiled.sql, parameters, returning=True)
            returned = [cursor.fetchone()[0]]
            while cursor.nextset():
                returned.append(cursor.fetchone()[0])
            return returned

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once per row in one driver call; returns the rows affected in total."""
        if not rows:
            return 0
        compiled = self._compile(connection.dialect)
        if compiled.copy is not None and len(rows) >= COPY_MIN_ROWS:
            with (
                _DriverCursor(connection, compiled.copy.sql) as cursor,
                cursor.copy(compiled.copy.sql) as copy,
            ):
                for row in rows:
                    copy.write_row(compiled.copy.values(row))
            return len(rows)
        with _DriverCursor(connection, compiled.sql) as cursor:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
            return int(cursor.rowcount)


class IdListStatement:
    """A statement over one list of ids, at the driver, with one SQL text whatever their number.

    A worker's batch reads its runs, their tasks and their errors by a list of run ids. With an
    expanding ``IN`` SQLAlchemy compiles the statement again for each length, processes every
    value of every row in Python, and costs several times the query; in a batch of a few runs
    (a worker keeping up with its callers, its batches small) that was the largest share of a
    step after the nodes themselves. Here the list is one parameter: a JSON array read with
    ``json_each`` on SQLite, an array compared with ``= ANY`` on PostgreSQL, so the driver's
    statement cache (and the server's prepared plan) serve every batch.

    ``build`` is given a function making "this column is one of the ids" and returns the
    statement, a SELECT or an UPDATE; it is built and compiled once per dialect. :meth:`rows`
    returns a SELECT's rows as dicts by column name, JSON documents decoded and booleans as
    ``bool``, as SQLAlchemy's own result gives them.
    """

    def __init__(
        self,
        build: Callable[
            [Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]], sa.Select[Any] | sa.Update
        ],
        *,
        ids: str = "b_ids",
    ) -> None:
        self._build = build
        self._ids = ids
        self._compiled: dict[str, tuple[BulkStatement, tuple[str, ...], _Converters]] = {}

    def _compile(self, dialect: Dialect) -> tuple[BulkStatement, tuple[str, ...], _Converters]:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self._build(lambda column: _one_of(column, dialect.name, self._ids))
            described = statement.column_descriptions if isinstance(statement, sa.Select) else []
            keys = tuple(str(column["name"]) for column in described)
            types = [column["type"] for column in described]
            found = (BulkStatement(statement), keys, _converters(types, dialect.name))
            self._compiled[dialect.name] = found
        return found

    def _values(
        self, connection: Connection, ids: Sequence[Any], values: Mapping[str, Any]
    ) -> dict[str, Any]:
        listed = dumps(list(ids)) if connection.dialect.name == "sqlite" else list(ids)
        return {**values, self._ids: listed}

    def rows(
        self, connection: Connection, ids: Sequence[Any], **values: Any
    ) -> list[dict[str, Any]]:
        """The SELECT's rows for ``ids`` (and any other parameters it binds, by name)."""
        statement, keys, converters = self._compile(connection.dialect)
        found = statement.all(connection, self._values(connection, ids, values))
        if not converters:
            return [dict(zip(keys, row, strict=True)) for row in found]
        rows = []
        for row in found:
            converted = list(row)
            for index, convert in converters:
                if converted[index] is not None:
                    converted[index] = convert(converted[index])
            rows.append(dict(zip(keys, converted, strict=True)))
        return rows

    def execute(self, connection: Connection, ids: Sequence[Any], **values: Any) -> None:
        """Execute the statement (an UPDATE) for ``ids`` and any other parameters, by name."""
        statement = self._compile(connection.dialect)[0]
        statement.execute(connection, [self._values(connection, ids, values)])


_Converters = tuple[tuple[int, Callable[[Any], Any]], ...]


def _one_of(column: sa.ColumnElement[Any], dialect: str, name: str) -> sa.ColumnElement[bool]:
    """``column`` is one of the ids bound (as one parameter) as ``name``."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    listed: sa.Select[Any] = sa.select(sa.literal_column("value")).select_from(
        sa.func.json_each(sa.bindparam(name))
    )
    return column.in_(listed.scalar_subquery())


def _converters(types: Sequence[Any], dialect: str) -> _Converters:
    """What SQLAlchemy's result processing does to these columns' values on ``dialect``: on
    SQLite, JSON text decoded and 0 / 1 made booleans; psycopg already returns both as such."""
    if dialect != "sqlite":
        return ()
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for index, kind in enumerate(types):
        if isinstance(kind, sa.JSON):
            found.append((index, orjson.loads))
        elif isinstance(kind, sa.Boolean):
            found.append((index, bool))
    return tuple(found)


class _DriverCursor:
    """A cursor of the connection's own driver connection, inside its current transaction.

    Going to the driver directly skips SQLAlchemy's per-statement bookkeeping (about half the
    cost of a one-row insert); its error translation is kept, so callers still catch
    ``sqlalchemy.exc.IntegrityError`` and friends. A class rather than a ``@contextmanager``
    generator: every statement of a createStart and of a step goes through it (eight a run of
    linear10), and the generator's frame, its two resumptions and its wrapper object measured
    at about twice the cost of these two methods.
    """

    __slots__ = ("_cursor", "_error", "_sql")

    def __init__(self, connection: Connection, sql: str) -> None:
        self._sql = sql
        self._error: type[Exception] = connection.dialect.loaded_dbapi.Error
        self._cursor: Any = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def __enter__(self) -> Any:
        return self._cursor

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any
    ) -> None:
        self._cursor.close()
        if isinstance(exc, self._error):
            raise sa.exc.DBAPIError.instance(self._sql, None, exc, self._error) from exc


def insert_all(
    table: sa.Table, *, database_id: bool = False, returning_id: bool = False
) -> BulkStatement:
    """An INSERT of every column of ``table`` (rows must name them all).

    With ``database_id`` (implied by ``returning_id``) the database assigns the primary key and
    rows leave it out. JSON columns are found from the table's types, so a new JSON column
    cannot be forgotten.
    """
    database_id = database_id or returning_id
    columns = [c for c in table.columns if not (database_id and c.primary_key)]
    statement = table.insert().values({c.name: sa.bindparam(c.name) for c in columns})
    if returning_id:
        statement = statement.returning(table.c.id)
    json_names = [c.name for c in columns if isinstance(c.type, sa.JSON)]
    return BulkStatement(statement, json_names, copy_into=None if returning_id else table)


__all__ = ["COPY_MIN_ROWS", "BulkStatement", "IdListStatement", "dumps", "insert_all"]
