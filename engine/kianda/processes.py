"""Processes: the trees the instance API names, their fields and versions, and deploying one.

A process is a tree seen through its process name (``engine.tree.fields``). Listing reads every
process with its tree's latest stored version in one query. Deploying takes a tree's YAML,
validates it exactly as a file is validated (every problem listed in one ``TreeError``), and
registers it: a changed definition becomes a new version that new runs start on, while runs in
flight stay on the version they started with; the same definition again is no new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import Problem, ProcessNotFound, TreeError
from engine.records import TreeKey
from engine.store import processes as process_store
from engine.store import trees as tree_store
from engine.store.database import Database
from engine.tree.catalog import TreeCatalog
from engine.tree.fields import FieldSpec
from engine.tree.loader import load_tree_text

DEPLOYED_FILE = "<deployed>"
_KEY_COLUMNS = (
    "source_name",
    "source_group",
    "tree_name",
)  # how problems of a deployed definition name their "file"


@dataclass(frozen=True)
class ProcessVersion:
    version: int
    status: str
    digest: str
    created_at: float


@dataclass(frozen=True)
class Process:
    """A process at its current (latest) version; ``versions`` only when read by name."""

    name: str
    key: TreeKey
    version: int
    status: str
    description: str
    fields: tuple[FieldSpec, ...]
    definition: Mapping[str, Any]
    created_at: float
    versions: tuple[ProcessVersion, ...] = field(default=())


@dataclass(frozen=True)
class Deployment:
    process: Process
    created: bool  # False when the definition was the current version already


class ProcessShelf:
    """Reads processes and deploys them, over one database and its tree catalog."""

    def __init__(self, database: Database, catalog: TreeCatalog) -> None:
        self.database = database
        self.catalog = catalog

    def list(self) -> list[Process]:
        """Every process at its current version, by name."""
        with self.database.read() as connection:
            rows = process_store.current_versions(connection)
        return [self._process(row) for row in rows]

    def get(self, name: str) -> Process:
        """One process at its current version, with every version it has had."""
        with self.database.read() as connection:
            rows = process_store.current_versions(connection, name)
            key = None if not rows else TreeKey(*(rows[0][c] for c in _KEY_COLUMNS))
            versions = [] if key is None else process_store.versions(connection, key)
        if not rows:
            raise ProcessNotFound(process=name)
        process = self._process(rows[0])  # may read a stored definition: outside the block
        return replace(process, versions=tuple(ProcessVersion(**v) for v in versions))

    def deploy(self, text: str) -> Deployment:
        """Validate a tree's YAML and register it; TreeError (every problem) stores nothing."""
        tree = load_tree_text(
            text,
            file=DEPLOYED_FILE,
            registry=self.catalog.registry,
            expressions=self.catalog.expressions,
            routines=self.catalog.routine_signatures(),  # a deployed tree may call routines
            strict=self.catalog.strict,  # as a tree file is (engine.tree.leniency)
        )
        if tree.routine is not None:
            message = (
                f"{tree.routine.definition_id!r} is a routine, not a process: load routines "
                "as tree files (--trees)"
            )
            raise TreeError(problems=[Problem(file=DEPLOYED_FILE, message=message)])
        if not tree.process:
            message = (
                "a process declares its name ('process') or its 'fields'; this tree declares "
                "neither, so it is not a process (load it as a tree file)"
            )
            raise TreeError(problems=[Problem(file=DEPLOYED_FILE, message=message)])
        with self.database.read() as connection:
            before = tree_store.latest_version(connection, tree.key)
        self.catalog.register(tree)
        created = before is None or before.digest != tree.digest
        return Deployment(process=self.get(tree.process), created=created)

    def _process(self, row: Mapping[str, Any]) -> Process:
        tree = self.catalog.for_version(row["version_id"])
        return Process(
            name=row["name"],
            key=TreeKey(row["source_name"], row["source_group"], row["tree_name"]),
            version=row["version"],
            status=row["status"],
            description=tree.description,
            fields=tree.fields,
            definition=row["definition"],
            created_at=row["created_at"],
        )


__all__ = ["DEPLOYED_FILE", "Deployment", "Process", "ProcessShelf", "ProcessVersion"]
