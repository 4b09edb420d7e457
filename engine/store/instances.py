"""Instances: numbering, reading with their run's status and creator, and versioned writes.

A field write is one conditional ``UPDATE ... WHERE name = :name AND version = :expected``:
of concurrent writes based on one version exactly one matches a row (PostgreSQL re-checks the
condition after the winner's commit; SQLite writes one at a time), and the run's ``values``
follow in the same transaction. Numbering is one upsert on the process's counter row, which
also serializes concurrent creations of one process on PostgreSQL until they commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from engine.rows import RowValues
from engine.store.instance_tables import instance_counters, instances
from engine.store.tables import run_creators, runs, tree_versions

_READ = (
    sa.select(
        instances,
        runs.c.status,
        runs.c.tree_version_id,
        tree_versions.c.version.label("tree_version"),
        run_creators.c.user_id.label("created_by"),
    )
    .join(runs, runs.c.id == instances.c.run_id)
    .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
    .outerjoin(run_creators, run_creators.c.run_id == instances.c.run_id)
)


def next_number(connection: Connection, process: str) -> int:
    """The next instance number of ``process`` (1 for its first)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(instance_counters)
        .values(process=process, last=1)
        .on_conflict_do_update(
            index_elements=[instance_counters.c.process],
            set_={"last": instance_counters.c.last + 1},
        )
        .returning(instance_counters.c.last)
    )
    return int(connection.execute(statement).scalar_one())


def insert_instance(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(instances.insert().values(**values))


def read_instance(
    connection: Connection, name: str, *, created_by: str | None = None
) -> RowValues | None:
    """The instance with its run's ``status``, ``tree_version_id`` and ``created_by``.

    With ``created_by``, only an instance that user created is found.
    """
    statement = _READ.where(instances.c.name == name)
    if created_by is not None:
        statement = statement.where(run_creators.c.user_id == created_by)
    return connection.execute(statement).mappings().first()


def read_instance_of_run(connection: Connection, run_id: int) -> RowValues | None:
    """The instance whose run is ``run_id`` (as :func:`read_instance`), if it is one."""
    return connection.execute(_READ.where(instances.c.run_id == run_id)).mappings().first()


def _listed(
    statement: sa.Select[Any], process: str | None, created_by: str | None
) -> sa.Select[Any]:
    if process is not None:
        statement = statement.where(instances.c.process == process)
    if created_by is not None:
        statement = statement.where(run_creators.c.user_id == created_by)
    return statement


def list_instances(
    connection: Connection,
    *,
    process: str | None = None,
    created_by: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RowValues]:
    """Instances (as :func:`read_instance`) of one process or all, of one creator or any:
    by process, newest first (the process and number are a unique index)."""
    statement = _listed(_READ, process, created_by)
    statement = statement.order_by(instances.c.process, instances.c.number.desc())
    return list(connection.execute(statement.limit(limit).offset(offset)).mappings())


def count_instances(
    connection: Connection, *, process: str | None = None, created_by: str | None = None
) -> int:
    """How many instances :func:`list_instances` pages through with these filters."""
    statement = sa.select(sa.func.count()).select_from(
        instances.outerjoin(run_creators, run_creators.c.run_id == instances.c.run_id)
    )
    return int(connection.execute(_listed(statement, process, created_by)).scalar_one())


def write_fields(
    connection: Connection,
    *,
    name: str,
    run_id: int,
    expected_version: int,
    fields: Mapping[str, Any],
    values: Mapping[str, Any],
    now: float,
) -> bool:
    """Store the fields if the instance is still at ``expected_version``; False if it is not.

    ``values`` are merged into the run's ``values``: keys that are not fields are kept.
    """
    result = connection.execute(
        instances.update()
        .where(instances.c.name == name, instances.c.version == expected_version)
        .values(fields=dict(fields), version=instances.c.version + 1, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    # The winner holds the instance row now, so this read-and-merge cannot interleave with
    # another field write of the same instance.
    existing = connection.execute(sa.select(runs.c["values"]).where(runs.c.id == run_id))
    merged = {**existing.scalar_one(), **values}
    connection.execute(
        runs.update()
        .where(runs.c.id == run_id)
        .values(values=merged, revision=runs.c.revision + 1)  # cached states reload it
    )
    return True


__all__ = [
    "count_instances",
    "insert_instance",
    "list_instances",
    "next_number",
    "read_instance",
    "read_instance_of_run",
    "write_fields",
]
