"""Tree versions: a changed definition is a new version; runs keep the version they started on.

A routine's versions also carry its definition id (``routine_id``). The routine an id names is
the one whose latest version provides it: a newer version that is Inactive or provides another
id takes the id away (``engine.tree.routines``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import TreeKey
from engine.store.bulk import BulkStatement
from engine.store.tables import tree_versions


@dataclass(frozen=True)
class StoredVersion:
    id: int
    version: int
    status: str
    digest: str


def _key_filter(key: TreeKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        tree_versions.c.source_name == key.source_name,
        tree_versions.c.source_group == key.source_group,
        tree_versions.c.name == key.name,
    )


# Every createStart reads it (engine.tree.catalog.current): at the driver, compiled once.
_LATEST = BulkStatement(
    sa.select(
        tree_versions.c.id,
        tree_versions.c.version,
        tree_versions.c.status,
        tree_versions.c.digest,
    )
    .where(
        tree_versions.c.source_name == sa.bindparam("source_name"),
        tree_versions.c.source_group == sa.bindparam("source_group"),
        tree_versions.c.name == sa.bindparam("name"),
    )
    .order_by(tree_versions.c.version.desc())
    .limit(sa.literal_column("1"))
)


def latest_version(connection: Connection, key: TreeKey) -> StoredVersion | None:
    parameters = {"source_name": key.source_name, "source_group": key.source_group}
    row = _LATEST.first(connection, {**parameters, "name": key.name})
    return None if row is None else StoredVersion(*row)


def save_version(
    connection: Connection,
    *,
    key: TreeKey,
    digest: str,
    status: str,
    selection: str,
    definition: Mapping[str, Any],
    routine_id: str | None,
    now: float,
) -> StoredVersion:
    """Store a definition as a new version unless the latest stored one has the same digest."""
    latest = latest_version(connection, key)
    if latest is not None and latest.digest == digest:
        return latest
    number = 1 if latest is None else latest.version + 1
    version_id = connection.execute(
        tree_versions.insert()
        .values(
            source_name=key.source_name,
            source_group=key.source_group,
            name=key.name,
            version=number,
            digest=digest,
            status=status,
            selection=selection,
            definition=dict(definition),
            routine_id=routine_id,
            created_at=now,
        )
        .returning(tree_versions.c.id)
    ).scalar_one()
    return StoredVersion(id=version_id, version=number, status=status, digest=digest)


_LATER = tree_versions.alias("later")
# Versions that are the latest of their tree: no later version of the same tree exists.
_IS_LATEST = ~sa.exists().where(
    _LATER.c.source_name == tree_versions.c.source_name,
    _LATER.c.source_group == tree_versions.c.source_group,
    _LATER.c.name == tree_versions.c.name,
    _LATER.c.version > tree_versions.c.version,
)


@dataclass(frozen=True)
class StoredRoutine:
    """The latest version of a routine's tree: what its definition id names now."""

    version_id: int
    key: TreeKey
    status: str
    definition: Mapping[str, Any]


def current_routines(
    connection: Connection, definition_id: str | None = None
) -> list[StoredRoutine]:
    """Latest versions that provide a routine id (that one id, or any), newest first."""
    statement = (
        sa.select(
            tree_versions.c.id,
            tree_versions.c.source_name,
            tree_versions.c.source_group,
            tree_versions.c.name,
            tree_versions.c.status,
            tree_versions.c.definition,
        )
        .where(tree_versions.c.routine_id.is_not(None), _IS_LATEST)
        .order_by(tree_versions.c.id.desc())
    )
    if definition_id is not None:
        statement = statement.where(tree_versions.c.routine_id == definition_id)
    return [
        StoredRoutine(row[0], TreeKey(row[1], row[2], row[3]), row[4], row[5])
        for row in connection.execute(statement)
    ]


def routine_ids(connection: Connection) -> set[str]:
    """Every definition id a routine version ever provided (callers stored may name them)."""
    statement = sa.select(tree_versions.c.routine_id).where(tree_versions.c.routine_id.is_not(None))
    return set(connection.execute(statement.distinct()).scalars())


def version_definition(connection: Connection, version_id: int) -> Mapping[str, Any] | None:
    return connection.execute(
        sa.select(tree_versions.c.definition).where(tree_versions.c.id == version_id)
    ).scalar_one_or_none()


__all__ = [
    "StoredRoutine",
    "StoredVersion",
    "current_routines",
    "latest_version",
    "routine_ids",
    "save_version",
    "version_definition",
]
