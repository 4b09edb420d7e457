"""The Engine's reads of trees as stored: each tree's latest version with its runs by status,
its versions, the picture of any version, and the runs in flight on an older version.

A tree's key is what a run, a schedule or a process names; its versions are what runs are
pinned to (``engine.tree.catalog``). Everything here reads the database, not this process's
memory, so it shows what every engine process sharing the database has deployed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from engine import inputs
from engine.errors import BadRequest, TreeVersionNotFound
from engine.records import TreeKey
from engine.store import tree_lists
from engine.store.database import Database
from engine.store.tree_lists import StaleRun, TreeVersionSummary
from engine.tree.catalog import TreeCatalog
from engine.tree.picture import render, tree_dot

TREE_STATUSES = ("Active", "Inactive")
# A stored version never changes, so neither does its DOT text: drawings are kept by that
# text (whichever engine asks), sparing a Graphviz process per view of a popular version.
_drawn = lru_cache(maxsize=64)(render)


@dataclass(frozen=True)
class TreeOverview:
    """A tree at its latest version, with how many runs it has by status (all versions) and
    how many of its Staged or Started runs are on an older version."""

    latest: TreeVersionSummary
    runs: dict[str, int] = field(default_factory=dict)
    stale_runs: int = 0

    @property
    def key(self) -> TreeKey:
        return self.latest.key


def _status(status: str | None) -> str | None:
    if status is not None and status not in TREE_STATUSES:
        raise BadRequest(field="status", reason=f"expected one of {TREE_STATUSES}, not {status!r}")
    return status


class TreeReads:
    """Trees, versions and pictures (part of :class:`~engine.engine.Engine`)."""

    database: Database
    catalog: TreeCatalog
    clock: Callable[[], float]

    def list_tree_overviews(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[TreeOverview]]:
        """Trees at their latest version (by source name, group, name), with how many match.

        ``status`` keeps the trees whose latest version is Active or Inactive; ``name`` those
        with it in their source name, group or tree name (case ignored). Run counts are read
        for the page's trees only, in SQL.
        """
        status = _status(status)
        name = inputs.optional("name", name)
        with self.database.read() as connection:
            total = tree_lists.count_trees(connection, status=status, name=name)
            found = tree_lists.list_trees(
                connection, status=status, name=name, limit=limit, offset=offset
            )
            keys = [summary.key for summary in found]
            counts = tree_lists.run_counts(connection, keys)
            stale = tree_lists.stale_run_counts(connection, found)
        return total, [
            TreeOverview(s, runs=counts.get(s.key, {}), stale_runs=stale.get(s.key, 0))
            for s in found
        ]

    def tree_versions(self, key: TreeKey) -> list[TreeVersionSummary]:
        """Every stored version of a tree, newest first (empty for a tree never stored)."""
        with self.database.read() as connection:
            return tree_lists.versions(connection, key)

    def get_tree_version(self, version_id: int) -> TreeVersionSummary:
        with self.database.read() as connection:
            found = tree_lists.version_by_id(connection, version_id)
        if found is None:
            raise TreeVersionNotFound(version_id=version_id)
        return found

    def tree_version_picture(self, version_id: int, fmt: str = "svg") -> bytes:
        """A stored version drawn as ``treeflow graph`` draws a tree (``svg``, ``png``, ``dot``);
        GraphvizNotFound without Graphviz's ``dot`` (``dot`` text needs none)."""
        if fmt not in ("svg", "png", "dot"):
            raise BadRequest(field="format", reason=f"expected svg, png or dot, not {fmt!r}")
        self.get_tree_version(version_id)
        return _drawn(tree_dot(self.catalog.for_version(version_id)), fmt)

    def count_stale_runs(self, key: TreeKey | None = None) -> int:
        """How many runs :meth:`list_stale_runs` pages through (of one tree, or of every one)."""
        with self.database.read() as connection:
            return tree_lists.count_stale_runs(connection, key)

    def list_stale_runs(self, key: TreeKey, *, limit: int = 50, offset: int = 0) -> list[StaleRun]:
        """A tree's runs Staged or Started on a version older than its latest, oldest first:
        what a deploy left running on the definition it replaced (none for an unknown tree)."""
        with self.database.read() as connection:
            latest = tree_lists.latest_of(connection, key)
            if latest is None:
                return []
            return tree_lists.list_stale_runs(connection, latest, limit=limit, offset=offset)


__all__ = ["TREE_STATUSES", "TreeOverview", "TreeReads"]
