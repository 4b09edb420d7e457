"""Driver-level ``executemany`` for the writes every trigger makes.

A step writes a dozen task rows per run. SQLAlchemy's executemany runs every value of every row
through its type processors in Python (JSON columns are serialized there, one call per value),
which measured as the largest single cost of processing a trigger. A :class:`BulkStatement` is
compiled by SQLAlchemy from the table definition, once per dialect, so the SQL text and its
column lists are never written by hand; rows are then handed to the driver's ``executemany`` as
tuples, with JSON columns serialized by orjson. On PostgreSQL psycopg sends a
Python ``str`` as an untyped literal, so the JSON text is stored as JSONB by the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

_Converter = Callable[[Any], Any] | None


def dumps(value: Any) -> str:
    """JSON text for a column; orjson is an order of magnitude faster than json here."""
    return orjson.dumps(value).decode()


class BulkStatement:
    """An INSERT or UPDATE whose every bound value comes from the rows it is executed with.

    ``json_names`` are the parameter names holding JSON documents; their values are serialized
    here. Constants belong in the statement as literals, not as bound parameters.
    """

    def __init__(self, statement: sa.Insert | sa.Update, json_names: Sequence[str] = ()) -> None:
        self._statement = statement
        self._json_names = frozenset(json_names)
        self._compiled: dict[str, tuple[str, tuple[tuple[str, _Converter], ...], bool]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[tuple[str, _Converter], ...], bool]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            positional = bool(compiled.positional)
            names = compiled.positiontup if positional else list(compiled.binds)
            order = tuple(
                (name, dumps if name in self._json_names else None) for name in names or ()
            )
            found = (compiled.string, order, positional)
            self._compiled[dialect.name] = found
        return found

    def _parameters(self, order: tuple[tuple[str, _Converter], ...], positional: bool,
                    row: Mapping[str, Any]) -> Any:  # fmt: skip
        if positional:
            return tuple(row[n] if convert is None else convert(row[n]) for n, convert in order)
        return {n: row[n] if convert is None else convert(row[n]) for n, convert in order}

    def scalar(self, connection: Connection, row: Mapping[str, Any]) -> Any:
        """Execute for one row and return the first column of the row it returns (RETURNING)."""
        sql, order, positional = self._compile(connection.dialect)
        return connection.exec_driver_sql(sql, self._parameters(order, positional, row)).scalar()

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once per row in one driver call; returns the rows affected in total."""
        if not rows:
            return 0
        sql, order, positional = self._compile(connection.dialect)
        parameters: list[Any]
        if positional:
            parameters = [
                tuple(row[n] if convert is None else convert(row[n]) for n, convert in order)
                for row in rows
            ]
        else:
            parameters = [
                {n: row[n] if convert is None else convert(row[n]) for n, convert in order}
                for row in rows
            ]
        result = connection.exec_driver_sql(sql, parameters)
        return int(result.rowcount)


def insert_all(table: sa.Table, *, returning_id: bool = False) -> BulkStatement:
    """An INSERT of every column of ``table`` but an autoincrement id (rows must name them all).

    JSON columns are found from the table's types, so a new JSON column cannot be forgotten.
    """
    columns = [c for c in table.columns if not (returning_id and c.primary_key)]
    statement = table.insert().values({c.name: sa.bindparam(c.name) for c in columns})
    if returning_id:
        statement = statement.returning(table.c.id)
    json_names = [c.name for c in columns if isinstance(c.type, sa.JSON)]
    return BulkStatement(statement, json_names)


__all__ = ["BulkStatement", "dumps", "insert_all"]
