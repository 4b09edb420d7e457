"""Process names: which tree each names, and the current version of every process.

A tree's process name is claimed when a version of it is saved (in the same transaction), so a
name names one tree in the database whatever engine process loaded it; a tree whose ``process``
key changed gives up its old name.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import TreeKey
from engine.rows import RowValues
from engine.store.instance_tables import processes
from engine.store.tables import tree_versions


def _key(row: RowValues) -> TreeKey:
    return TreeKey(row["source_name"], row["source_group"], row["tree_name"])


def claim(connection: Connection, name: str, key: TreeKey) -> TreeKey | None:
    """Make ``name`` the process name of ``key``; the other tree's key if ``name`` is taken."""
    row = connection.execute(sa.select(processes).where(processes.c.name == name)).mappings()
    found = row.first()
    if found is not None:
        other = _key(found)
        return None if other == key else other
    connection.execute(
        processes.delete().where(
            processes.c.source_name == key.source_name,
            processes.c.source_group == key.source_group,
            processes.c.tree_name == key.name,
        )
    )
    connection.execute(
        processes.insert().values(
            name=name,
            source_name=key.source_name,
            source_group=key.source_group,
            tree_name=key.name,
        )
    )
    return None


def tree_of(connection: Connection, name: str) -> TreeKey | None:
    found = connection.execute(sa.select(processes).where(processes.c.name == name)).mappings()
    row = found.first()
    return None if row is None else _key(row)


def current_versions(connection: Connection, name: str | None = None) -> list[RowValues]:
    """Each process (or the one named) with its tree's latest version, by process name.

    Rows hold ``name``, the tree key columns, and the version's ``version_id``, ``version``,
    ``status``, ``definition`` and ``created_at``.
    """
    latest = (
        sa.select(
            tree_versions.c.source_name,
            tree_versions.c.source_group,
            tree_versions.c.name,
            sa.func.max(tree_versions.c.version).label("version"),
        )
        .group_by(tree_versions.c.source_name, tree_versions.c.source_group, tree_versions.c.name)
        .subquery()
    )
    statement = (
        sa.select(
            processes,
            tree_versions.c.id.label("version_id"),
            tree_versions.c.version,
            tree_versions.c.status,
            tree_versions.c.definition,
            tree_versions.c.created_at,
        )
        .join(
            latest,
            sa.and_(
                latest.c.source_name == processes.c.source_name,
                latest.c.source_group == processes.c.source_group,
                latest.c.name == processes.c.tree_name,
            ),
        )
        .join(
            tree_versions,
            sa.and_(
                tree_versions.c.source_name == latest.c.source_name,
                tree_versions.c.source_group == latest.c.source_group,
                tree_versions.c.name == latest.c.name,
                tree_versions.c.version == latest.c.version,
            ),
        )
        .order_by(processes.c.name)
    )
    if name is not None:
        statement = statement.where(processes.c.name == name)
    return list(connection.execute(statement).mappings())


def versions(connection: Connection, key: TreeKey) -> list[RowValues]:
    """Every stored version of a tree, oldest first (without definitions)."""
    statement = (
        sa.select(
            tree_versions.c.version,
            tree_versions.c.status,
            tree_versions.c.digest,
            tree_versions.c.created_at,
        )
        .where(
            tree_versions.c.source_name == key.source_name,
            tree_versions.c.source_group == key.source_group,
            tree_versions.c.name == key.name,
        )
        .order_by(tree_versions.c.version)
    )
    return list(connection.execute(statement).mappings())


__all__ = ["claim", "current_versions", "tree_of", "versions"]
