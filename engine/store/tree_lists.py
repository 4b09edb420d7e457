"""Trees as an operator lists them: each tree's latest version, its versions, its runs by
status, and the runs still in flight on a version older than its latest.

Every list is paged and filtered in SQL, and counts are ``GROUP BY`` queries, so a page costs
the same with ten runs stored or a million: run counts are read for the page's trees only,
through the tree index on runs (``ix_runs_tree``), and in-flight runs are found through the
status index. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.records import TreeKey
from engine.statuses import RunStatus
from engine.store.tables import runs, tree_versions
from engine.store.trees import IS_LATEST, LATER

IN_FLIGHT = (RunStatus.STAGED.value, RunStatus.STARTED.value)


@dataclass(frozen=True)
class TreeVersionSummary:
    """One stored version of a tree (without its definition)."""

    id: int
    key: TreeKey
    version: int
    status: str
    selection: str
    routine_id: str | None
    created_at: float


@dataclass(frozen=True)
class StaleRun:
    """A run still in flight on a version older than its tree's latest."""

    run_id: int
    key: TreeKey
    status: str
    version: int  # the version it runs on
    latest_version: int
    created_at: float


_SUMMARY = (
    tree_versions.c.id,
    tree_versions.c.source_name,
    tree_versions.c.source_group,
    tree_versions.c.name,
    tree_versions.c.version,
    tree_versions.c.status,
    tree_versions.c.selection,
    tree_versions.c.routine_id,
    tree_versions.c.created_at,
)


def _summary(row: sa.Row[*tuple[Any, ...]]) -> TreeVersionSummary:
    return TreeVersionSummary(
        id=int(row.id),
        key=TreeKey(row.source_name, row.source_group, row.name),
        version=int(row.version),
        status=str(row.status),
        selection=str(row.selection),
        routine_id=row.routine_id,
        created_at=float(row.created_at),
    )


def _tree_filters(status: str | None, name: str | None) -> list[sa.ColumnElement[bool]]:
    """Latest versions, by their status (Active, Inactive) and a part of any of the key's names."""
    found: list[sa.ColumnElement[bool]] = [IS_LATEST]
    if status is not None:
        found.append(tree_versions.c.status == status)
    if name:
        pattern = f"%{name.lower()}%"
        found.append(
            sa.or_(
                sa.func.lower(tree_versions.c.name).like(pattern),
                sa.func.lower(tree_versions.c.source_group).like(pattern),
                sa.func.lower(tree_versions.c.source_name).like(pattern),
            )
        )
    return found


def count_trees(
    connection: Connection, *, status: str | None = None, name: str | None = None
) -> int:
    statement = sa.select(sa.func.count()).select_from(tree_versions)
    return int(connection.execute(statement.where(*_tree_filters(status, name))).scalar_one())


def list_trees(
    connection: Connection,
    *,
    status: str | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[TreeVersionSummary]:
    """Each tree's latest version, by source name, group and tree name."""
    statement = (
        sa.select(*_SUMMARY)
        .where(*_tree_filters(status, name))
        .order_by(tree_versions.c.source_name, tree_versions.c.source_group, tree_versions.c.name)
        .limit(limit)
        .offset(offset)
    )
    return [_summary(row) for row in connection.execute(statement)]


def versions(connection: Connection, key: TreeKey) -> list[TreeVersionSummary]:
    """Every stored version of one tree, newest first."""
    statement = (
        sa.select(*_SUMMARY)
        .where(
            tree_versions.c.source_name == key.source_name,
            tree_versions.c.source_group == key.source_group,
            tree_versions.c.name == key.name,
        )
        .order_by(tree_versions.c.version.desc())
    )
    return [_summary(row) for row in connection.execute(statement)]


def version_by_id(connection: Connection, version_id: int) -> TreeVersionSummary | None:
    row = connection.execute(sa.select(*_SUMMARY).where(tree_versions.c.id == version_id)).first()
    return None if row is None else _summary(row)


def _of_trees(keys: Sequence[TreeKey]) -> sa.ColumnElement[bool]:
    return sa.or_(
        *(
            sa.and_(
                runs.c.source_name == key.source_name,
                runs.c.source_group == key.source_group,
                runs.c.tree_name == key.name,
            )
            for key in keys
        )
    )


def run_counts(connection: Connection, keys: Sequence[TreeKey]) -> dict[TreeKey, dict[str, int]]:
    """How many runs each of ``keys`` has, by run status (statuses without runs left out)."""
    if not keys:
        return {}
    statement = (
        sa.select(
            runs.c.source_name,
            runs.c.source_group,
            runs.c.tree_name,
            runs.c.status,
            sa.func.count(),
        )
        .where(_of_trees(keys))
        .group_by(runs.c.source_name, runs.c.source_group, runs.c.tree_name, runs.c.status)
    )
    found: dict[TreeKey, dict[str, int]] = {key: {} for key in keys}
    for source_name, source_group, tree_name, status, count in connection.execute(statement):
        found[TreeKey(source_name, source_group, tree_name)][status] = int(count)
    return found


def _stale_runs(keys: Sequence[TreeKey] | None) -> sa.Select[tuple[object, ...]]:
    """Runs Staged or Started whose version is not their tree's latest (``latest_version``)."""
    latest = (
        sa.select(sa.func.max(LATER.c.version))
        .where(
            LATER.c.source_name == tree_versions.c.source_name,
            LATER.c.source_group == tree_versions.c.source_group,
            LATER.c.name == tree_versions.c.name,
        )
        .scalar_subquery()
    )
    statement = (
        sa.select(
            runs.c.id,
            runs.c.source_name,
            runs.c.source_group,
            runs.c.tree_name,
            runs.c.status,
            tree_versions.c.version,
            latest.label("latest_version"),
            runs.c.created_at,
        )
        .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
        .where(runs.c.status.in_(IN_FLIGHT), ~IS_LATEST)
    )
    if keys is not None:
        statement = statement.where(_of_trees(keys))
    return statement


def stale_run_counts(connection: Connection, keys: Sequence[TreeKey]) -> dict[TreeKey, int]:
    """How many in-flight runs of each of ``keys`` are on an older version (0 left out)."""
    if not keys:
        return {}
    inner = _stale_runs(keys).subquery()
    statement = sa.select(
        inner.c.source_name, inner.c.source_group, inner.c.tree_name, sa.func.count()
    ).group_by(inner.c.source_name, inner.c.source_group, inner.c.tree_name)
    return {
        TreeKey(source_name, source_group, tree_name): int(count)
        for source_name, source_group, tree_name, count in connection.execute(statement)
    }


def count_stale_runs(connection: Connection, key: TreeKey | None = None) -> int:
    inner = _stale_runs(None if key is None else [key]).subquery()
    return int(connection.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def list_stale_runs(
    connection: Connection, key: TreeKey | None = None, *, limit: int = 50, offset: int = 0
) -> list[StaleRun]:
    """In-flight runs on an older version (of one tree, or any), oldest run first."""
    statement = _stale_runs(None if key is None else [key])
    statement = statement.order_by(runs.c.id).limit(limit).offset(offset)
    return [
        StaleRun(
            run_id=int(row.id),
            key=TreeKey(row.source_name, row.source_group, row.tree_name),
            status=str(row.status),
            version=int(row.version),
            latest_version=int(row.latest_version),
            created_at=float(row.created_at),
        )
        for row in connection.execute(statement)
    ]


__all__ = [
    "IN_FLIGHT",
    "StaleRun",
    "TreeVersionSummary",
    "count_stale_runs",
    "count_trees",
    "list_stale_runs",
    "list_trees",
    "run_counts",
    "stale_run_counts",
    "version_by_id",
    "versions",
]
