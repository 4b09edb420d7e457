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
from engine.store.trees import IS_LATEST

IN_FLIGHT = (RunStatus.STAGED.value, RunStatus.STARTED.value)
_COMPLETED = RunStatus.COMPLETED.value
_NOT_COMPLETED = tuple(status.value for status in RunStatus if status is not RunStatus.COMPLETED)


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
    """How many runs each of ``keys`` has, by run status (statuses without runs left out).

    Two reads that indexes answer, instead of one that reads every run of the trees: the
    total per tree from the tree index alone (it covers the key), and the runs in any status
    but Completed, of every tree, through the status index; Completed, most of any history,
    is the difference. The second read's cost is the runs not Completed, not the history.
    """
    if not keys:
        return {}
    key_columns = (runs.c.source_name, runs.c.source_group, runs.c.tree_name)
    totals = sa.select(*key_columns, sa.func.count()).where(_of_trees(keys)).group_by(*key_columns)
    others = (
        sa.select(*key_columns, runs.c.status, sa.func.count())
        .where(runs.c.status.in_(_NOT_COMPLETED))
        .group_by(*key_columns, runs.c.status)
    )
    found: dict[TreeKey, dict[str, int]] = {key: {} for key in keys}
    for source_name, source_group, tree_name, status, count in connection.execute(others):
        counts = found.get(TreeKey(source_name, source_group, tree_name))
        if counts is not None:
            counts[status] = int(count)
    for source_name, source_group, tree_name, total in connection.execute(totals):
        counts = found[TreeKey(source_name, source_group, tree_name)]
        completed = int(total) - sum(counts.values())
        if completed:
            counts[_COMPLETED] = completed
    return found


def _latest_ids() -> sa.Select[tuple[int]]:
    return sa.select(tree_versions.c.id).where(IS_LATEST)


def _older_ids(key: TreeKey) -> sa.Select[tuple[int]]:
    """The ids of a tree's versions but its latest (a subquery of the small versions table)."""
    return sa.select(tree_versions.c.id).where(
        tree_versions.c.source_name == key.source_name,
        tree_versions.c.source_group == key.source_group,
        tree_versions.c.name == key.name,
        ~IS_LATEST,
    )


# In-flight runs are found through the status index, never by their tree's key: the tree
# index would have the database read every run of the tree, its whole history, to find them.
_IN_FLIGHT = runs.c.status.in_(IN_FLIGHT)


def stale_run_counts(
    connection: Connection, latest: Sequence[TreeVersionSummary]
) -> dict[TreeKey, int]:
    """How many in-flight runs of each tree of ``latest`` (the trees' latest versions, as
    :func:`list_trees` gives them) are on an older version; trees without any left out."""
    if not latest:
        return {}
    key_columns = (runs.c.source_name, runs.c.source_group, runs.c.tree_name)
    statement = (
        sa.select(*key_columns, sa.func.count())
        .where(_IN_FLIGHT, runs.c.tree_version_id.not_in(_latest_ids()))
        .group_by(*key_columns)
    )
    wanted = {version.key for version in latest}
    found = (
        (TreeKey(source_name, source_group, tree_name), int(count))
        for source_name, source_group, tree_name, count in connection.execute(statement)
    )
    return {key: count for key, count in found if key in wanted}


def count_stale_runs(connection: Connection, key: TreeKey | None = None) -> int:
    """In-flight runs on a version older than their tree's latest (of one tree, or any)."""
    older = runs.c.tree_version_id.not_in(_latest_ids())
    if key is not None:
        older = runs.c.tree_version_id.in_(_older_ids(key))
    statement = sa.select(sa.func.count()).select_from(runs).where(_IN_FLIGHT, older)
    return int(connection.execute(statement).scalar_one())


def list_stale_runs(
    connection: Connection, latest: TreeVersionSummary, *, limit: int = 50, offset: int = 0
) -> list[StaleRun]:
    """The in-flight runs of ``latest``'s tree on an older version, oldest run first."""
    statement = (
        sa.select(runs.c.id, runs.c.status, tree_versions.c.version, runs.c.created_at)
        .join(tree_versions, tree_versions.c.id == runs.c.tree_version_id)
        .where(_IN_FLIGHT, runs.c.tree_version_id.in_(_older_ids(latest.key)))
        .order_by(runs.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        StaleRun(
            run_id=int(row.id),
            key=latest.key,
            status=str(row.status),
            version=int(row.version),
            latest_version=latest.version,
            created_at=float(row.created_at),
        )
        for row in connection.execute(statement)
    ]


def latest_of(connection: Connection, key: TreeKey) -> TreeVersionSummary | None:
    """The latest stored version of a tree, if it has one."""
    found = versions(connection, key)
    return found[0] if found else None


__all__ = [
    "IN_FLIGHT",
    "StaleRun",
    "TreeVersionSummary",
    "count_stale_runs",
    "count_trees",
    "latest_of",
    "list_stale_runs",
    "list_trees",
    "run_counts",
    "stale_run_counts",
    "version_by_id",
    "versions",
]
