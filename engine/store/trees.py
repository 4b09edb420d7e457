"""Tree versions: a changed definition is a new version; runs keep the version they started on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import tree_versions
from engine.tree import Tree, TreeKey


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


def latest_version(connection: Connection, key: TreeKey) -> StoredVersion | None:
    row = connection.execute(
        sa.select(
            tree_versions.c.id,
            tree_versions.c.version,
            tree_versions.c.status,
            tree_versions.c.digest,
        )
        .where(*_key_filter(key))
        .order_by(tree_versions.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else StoredVersion(*row)


def save_version(connection: Connection, tree: Tree, *, now: float) -> StoredVersion:
    """Store ``tree`` as a new version unless the latest stored one has the same content."""
    latest = latest_version(connection, tree.key)
    if latest is not None and latest.digest == tree.digest:
        return latest
    number = 1 if latest is None else latest.version + 1
    version_id = connection.execute(
        tree_versions.insert()
        .values(
            source_name=tree.key.source_name,
            source_group=tree.key.source_group,
            name=tree.key.name,
            version=number,
            digest=tree.digest,
            status=tree.status,
            selection=tree.selection,
            definition=dict(tree.definition),
            created_at=now,
        )
        .returning(tree_versions.c.id)
    ).scalar_one()
    return StoredVersion(id=version_id, version=number, status=tree.status, digest=tree.digest)


def version_definition(connection: Connection, version_id: int) -> Mapping[str, Any] | None:
    return connection.execute(
        sa.select(tree_versions.c.definition).where(tree_versions.c.id == version_id)
    ).scalar_one_or_none()


__all__ = ["StoredVersion", "latest_version", "save_version", "version_definition"]
