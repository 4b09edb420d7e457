"""The trees an engine knows: the current version of each, and any stored version by id.

A tree loaded here is saved as a version (a changed definition is a new version, the same one
is not) and becomes what new runs start on; runs keep the version they started on, so a version
a run needs is rebuilt from its stored definition when this process has not loaded it. Built
trees are kept in memory: templates are compiled once per version, not once per step.

Routines are found by definition id in the database, not in this process's memory: a routine
loaded, deactivated or renamed by any engine process sharing the database is what every one of
them calls next (``engine.tree.routines`` says when an id is checked).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import Problem, TreeError, TreeNotFound
from engine.handlers.registry import HandlerRegistry
from engine.records import TreeKey
from engine.store import processes as process_store
from engine.store import trees as tree_store
from engine.store.database import Database
from engine.tree.expressions import Expressions
from engine.tree.loader import load_tree_data, load_tree_text
from engine.tree.model import Tree
from engine.tree.routines import CalledRoutine, RoutineSignature, signature_of, unchecked

TreeSource = str | Mapping[str, Any] | os.PathLike[str]


def _refuse_taken_routine_id(connection: Connection, tree: Tree) -> None:
    """TreeError if another tree's latest version provides the routine id ``tree`` declares."""
    routine_id = tree.routine.definition_id if tree.routine is not None else ""
    for other in tree_store.current_routines(connection, routine_id):
        if other.key != tree.key:
            message = f"routine {routine_id!r} is already provided by {str(other.key)!r}"
            raise TreeError(problems=[Problem(file=tree.file, message=message)])


class TreeCatalog:
    """Shared by an engine's threads; one lock guards the two maps."""

    def __init__(
        self,
        database: Database,
        *,
        registry: HandlerRegistry,
        expressions: Expressions,
        clock: Callable[[], float],
        strict: bool = False,
    ) -> None:
        self.database = database
        self.strict = strict  # what Kinetic accepts is refused too (engine.tree.leniency)
        self.registry = registry
        self.expressions = expressions
        self.clock = clock
        self._lock = threading.Lock()
        self._current: dict[TreeKey, tuple[Tree, tree_store.StoredVersion]] = {}
        self._by_version: dict[int, Tree] = {}

    def load(self, source: TreeSource) -> Tree:
        """Build a tree from YAML text, a dict or a file, and register it."""
        registry, expressions, strict = self.registry, self.expressions, self.strict
        routines = self.routine_signatures()
        if isinstance(source, os.PathLike):
            path = Path(source)
            tree = load_tree_text(
                path.read_text(encoding="utf-8"),
                file=str(path),
                registry=registry,
                expressions=expressions,
                routines=routines,
                strict=strict,
            )
        elif isinstance(source, str):
            tree = load_tree_text(
                source, registry=registry, expressions=expressions, routines=routines, strict=strict
            )
        else:
            tree = load_tree_data(
                source, registry=registry, expressions=expressions, routines=routines, strict=strict
            )
        return self.register(tree)

    def register(self, tree: Tree) -> Tree:
        """Save ``tree`` as a version (if it changed) and make it the one new runs start on.

        A routine whose definition id another tree's routine provides is refused (TreeError),
        and so is a process name another tree has (claimed in the same transaction); then
        nothing is saved.
        """
        for attempt in range(2):
            try:
                with self.database.write() as connection:
                    if tree.routine is not None:
                        _refuse_taken_routine_id(connection, tree)
                    stored = tree_store.save_version(
                        connection,
                        key=tree.key,
                        digest=tree.digest,
                        status=tree.status,
                        selection=tree.selection,
                        definition=tree.definition,
                        routine_id=None if tree.routine is None else tree.routine.definition_id,
                        now=self.clock(),
                    )
                    other = (
                        process_store.claim(connection, tree.process, tree.key)
                        if tree.process  # a routine is not a process
                        else None
                    )
                    if other is not None:
                        message = (
                            f"process name {tree.process!r} is already the process of tree "
                            f"{str(other)!r}"
                        )
                        raise TreeError(problems=[Problem(file=tree.file, message=message)])
                break
            except sa.exc.IntegrityError:  # another engine claimed the name (or saved) first
                if attempt:
                    raise
        with self._lock:
            self._current[tree.key] = (tree, stored)
            self._by_version[stored.id] = tree
        return tree

    @property
    def trees(self) -> list[Tree]:
        with self._lock:
            return [tree for tree, _ in self._current.values()]

    def version_of(self, key: TreeKey) -> int | None:
        """The version number new runs of ``key`` start on, if the tree is known here."""
        with self._lock:
            known = self._current.get(key)
        return None if known is None else known[1].version

    def routine_signatures(self) -> dict[str, RoutineSignature]:
        """The routines callers may name now, by definition id (what loading checks against)."""
        with self.database.read() as connection:
            found = tree_store.current_routines(connection)
        signatures: dict[str, RoutineSignature] = {}
        for routine in reversed(found):  # newest last: it wins a (racy) duplicate id
            signature = signature_of(routine.definition)
            if signature is not None:
                signatures[signature.definition_id] = signature
        return signatures

    def routine(self, definition_id: str) -> CalledRoutine | None:
        """The active routine ``definition_id`` names now, or None (a Missing Routine Error)."""
        with self.database.read() as connection:
            found = tree_store.current_routines(connection, definition_id)
        if not found or found[0].status != "Active":
            return None
        tree = self.for_version(found[0].version_id)
        if tree.routine is None:
            return None
        return CalledRoutine(tree, found[0].version_id, tree.routine)

    def for_version(self, version_id: int) -> Tree:
        """The tree of a stored version, built from its definition the first time it is asked.

        Its routine calls are not checked against the routines as they are now: the version
        was checked when it was loaded, and a routine changed since is reported when called.
        """
        with self._lock:
            tree = self._by_version.get(version_id)
        if tree is not None:
            return tree
        with self.database.read() as connection:
            definition = tree_store.version_definition(connection, version_id)
            routine_ids = tree_store.routine_ids(connection) if definition is not None else set()
        if definition is None:
            raise LookupError(f"tree version {version_id} is not stored")
        tree = load_tree_data(
            definition,
            file=f"<tree version {version_id}>",
            registry=self.registry,
            expressions=self.expressions,
            routines=unchecked(routine_ids),
            check_references=False,  # as stored: it was valid when loaded (reference_checks)
        )
        with self._lock:
            self._by_version[version_id] = tree
        return tree

    def startable(self, key: TreeKey) -> tree_store.StoredVersion:
        """The version a new run of ``key`` starts on, read now (see :meth:`current`)."""
        with self.database.read() as connection:
            return self.current(connection, key)

    @staticmethod
    def current(connection: Connection, key: TreeKey) -> tree_store.StoredVersion:
        """The version a new run of ``key`` starts on; TreeNotFound if none is, or it is inactive.

        It is read from the database, in the caller's transaction, every time: another engine
        process sharing the database may have deployed a version or made the tree Inactive since
        this one loaded it, and a run must start on what is current, not on what this process
        remembers. One indexed read (the key and version are a unique index).
        """
        stored = tree_store.latest_version(connection, key)
        if stored is None:
            raise TreeNotFound(
                source_name=key.source_name, source_group=key.source_group, tree_name=key.name
            )
        if stored.status != "Active":
            raise TreeNotFound(
                source_name=key.source_name,
                source_group=key.source_group,
                tree_name=key.name,
                reason=f"the tree is {stored.status}",
            )
        return stored


__all__ = ["TreeCatalog", "TreeSource"]
