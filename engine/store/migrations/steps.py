"""What the revisions share: checks of what a database has, and the writes both dialects need.

Databases made before migrations existed carry no revision, and may be at any schema the
code had between two revisions; the steps that such a database may already have taken are
therefore written to be skipped when their table, column or index is already there. A revision
is otherwise plain Alembic: ``op`` calls in batch mode where SQLite must rebuild a table.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The JSON columns' type: JSONB on PostgreSQL, as engine.store.tables declares it.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Names for SQLite's unnamed UNIQUE constraints, so that a batch rebuild can drop one.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def is_sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _inspector() -> sa.Inspector:
    return sa.inspect(op.get_bind())  # a new one each time: earlier steps changed the schema


def has_table(table: str) -> bool:
    return table in _inspector().get_table_names()


def has_column(table: str, column: str) -> bool:
    return any(found["name"] == column for found in _inspector().get_columns(table))


def has_index(table: str, index: str) -> bool:
    return any(found["name"] == index for found in _inspector().get_indexes(table))


def add_column(table: str, column: sa.Column[object]) -> None:
    """Add ``column`` unless the database has it (a legacy database half way between two)."""
    if not has_column(table, column.name):
        op.add_column(table, column)


def add_reference(table: str, column: str, sql_type: str, target: str) -> None:
    """Add a nullable column referencing ``target``'s id.

    SQLite adds a column with an inline REFERENCES without rebuilding the table (a rebuild of
    ``runs`` would have to drop the table every other one references); PostgreSQL adds the
    constraint under the name it gives a table's own (``<table>_<column>_fkey``).
    """
    if has_column(table, column):
        return
    if is_sqlite():
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type} REFERENCES {target} (id)")
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(f"{table}_{column}_fkey", table, target, [column], ["id"])


def create_index(
    index: str, table: str, columns: list[str], *, where: str | None = None, unique: bool = False
) -> None:
    """Create ``index`` unless it exists; ``where`` makes it partial on both dialects."""
    if has_index(table, index):
        return
    condition: dict[str, Any] = {}
    if where is not None:
        condition = {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}
    op.create_index(index, table, columns, unique=unique, **condition)


__all__ = [
    "JSON",
    "SQLITE_NAMES",
    "add_column",
    "add_reference",
    "create_index",
    "has_column",
    "has_index",
    "has_table",
    "is_sqlite",
]
