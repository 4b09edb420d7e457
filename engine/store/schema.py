"""The schema's revision: what a database is at, making a new one, upgrading an old one.

Every database carries the Alembic revision of its schema in ``treeflow_schema_version`` (a
table of its own, so an embedding application's own Alembic history beside it is left alone).
An engine starts only on a database at the revision its code was written for
(:func:`prepare`):

- an empty database gets today's schema at once, from the tables' metadata, and is stamped
  with the newest revision (running every revision from the first would come to the same
  schema, slower; a test keeps the two identical);
- a database at an older revision is refused, naming both revisions and ``treeflow db
  upgrade``, unless the engine is told to upgrade (``Engine(upgrade=True)``): upgrading a
  schema that other processes or a backup routine rely on is an operator's decision, not a side
  effect of starting a process;
- a database at a revision the code does not know (made by a newer treeflow) is refused.

Databases made before treeflow had migrations carry no revision. Their tables say which
released schema they have (``_LEGACY_MARKERS``: what each revision up to the first stamped
release added), and they are stamped with it before upgrading. Upgrades run in one transaction:
on PostgreSQL under an advisory lock, so that processes starting together upgrade once; on
SQLite with foreign keys off while tables are rebuilt (batch mode), checked before commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from engine.errors import SchemaMismatch, SchemaUpgradeFailed
from engine.store.database import Database

VERSION_TABLE = "treeflow_schema_version"
MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "treeflow db upgrade"
# Tables in the engine's database that are not the engine's own schema: APScheduler keeps its
# job store in one it creates itself (engine.schedule.scheduler).
FOREIGN_TABLES = frozenset({"schedule_jobs", VERSION_TABLE})
_ADVISORY_LOCK = 7263541  # the same key as creating the schema (Database.create_schema)

_Check = Callable[[sa.Inspector], bool]
_T = TypeVar("_T")


def _table(name: str) -> _Check:
    return lambda inspector: inspector.has_table(name)


def _column(table: str, column: str) -> _Check:
    return lambda inspector: any(c["name"] == column for c in inspector.get_columns(table))


def _index(table: str, index: str) -> _Check:
    return lambda inspector: any(i["name"] == index for i in inspector.get_indexes(table))


# What each revision released before migrations existed added, oldest first: an unstamped
# database is at the last revision whose marker (and every earlier one) it has. Closed: every
# database made since carries its revision.
_LEGACY_MARKERS: tuple[tuple[str, _Check], ...] = (
    ("0001", _table("runs")),
    ("0002", _index("tasks", "ux_tasks_token")),
    ("0003", _table("users")),
    ("0004", _column("errors", "resolution_action")),
    ("0005", _column("runs", "parent_run_id")),
    ("0006", _table("instances")),
    ("0007", _table("schedules")),
    ("0008", _column("schedules", "process")),
    ("0009", _column("runs", "revision")),
    ("0010", _table("request_keys")),
    ("0011", _column("users", "name_key")),
    ("0012", _table("call_trees")),
)


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema is: ``revision`` (None: no treeflow tables yet), whether that
    revision is stamped or read off a legacy database's tables, and the code's newest."""

    revision: str | None
    stamped: bool
    head: str
    known: bool

    @property
    def current(self) -> bool:
        return self.revision == self.head

    def describe(self) -> str:
        if self.revision is None:
            return "empty (no treeflow tables)"
        what = "" if self.stamped else " (not stamped: read from its tables)"
        unknown = "" if self.known else " (unknown to this treeflow: made by a newer one?)"
        return f"{self.revision}{what}{unknown}"


@functools.cache
def scripts() -> ScriptDirectory:
    """The revisions shipped in the package (``engine/store/migrations/versions``), read once
    per process: loading them imports every revision's module."""
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    found = scripts().get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError(f"no schema revisions in {MIGRATIONS}")
    return found


def _context(connection: Connection, **opts: Any) -> MigrationContext:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, **opts})


def _legacy_revision(connection: Connection) -> str | None:
    inspector = sa.inspect(connection)
    found = None
    for revision, marker in _LEGACY_MARKERS:
        if not marker(inspector):
            break
        found = revision
    return found


def read_state(connection: Connection) -> SchemaState:
    """The schema state of the database ``connection`` is in (a read, in its transaction)."""
    directory = scripts()
    newest = head()
    stamped = _context(connection).get_current_revision()
    revision = stamped if stamped is not None else _legacy_revision(connection)
    known = revision is None
    if revision is not None:
        try:
            known = directory.get_revision(revision) is not None
        except CommandError:  # an id none of the revisions has
            known = False
    return SchemaState(revision=revision, stamped=stamped is not None, head=newest, known=known)


def state(database: Database) -> SchemaState:
    with database.read() as connection:
        return read_state(connection)


def on_database(url: str | None, call: Callable[[Database], _T]) -> _T:
    """``call`` on a database of its own at ``url``, closed afterwards (``treeflow db``)."""
    database = Database(url, pool_size=1)
    try:
        return call(database)
    finally:
        database.dispose()


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # engine processes starting together go in turn
        connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})"))


def _create(connection: Connection) -> None:
    SQLModel.metadata.create_all(connection)
    _context(connection).stamp(scripts(), "head")


def _refusal(found: SchemaState, url: str) -> SchemaMismatch:
    current = found.describe()
    if not found.known:
        return SchemaMismatch(
            current=current,
            expected=found.head,
            detail="the database was made or upgraded by a newer treeflow",
            command="run a treeflow that knows its revision (this one cannot downgrade it)",
        )
    return SchemaMismatch(
        current=current,
        expected=found.head,
        detail="the database was made by an earlier treeflow",
        command=f"back it up and run `{UPGRADE_COMMAND} --database {url}`"
        " (or start the engine with upgrade=True)",
    )


def prepare(database: Database, *, upgrade: bool = False) -> SchemaState:
    """Make ``database`` ready for this code, or refuse (:class:`SchemaMismatch`).

    An empty database gets the current schema; a current one, stamped or not, is used as it
    is; an older one is upgraded when ``upgrade`` is true and refused otherwise.
    """
    with database.write() as connection:
        _lock(connection)
        found = read_state(connection)
        if found.revision is None:
            _create(connection)
            return read_state(connection)
        if found.current:
            if not found.stamped:  # made by the release before migrations, at today's schema
                _context(connection).stamp(scripts(), found.head)
            return found
        if not (found.known and upgrade):
            raise _refusal(found, database.url.render_as_string(hide_password=True))
    return upgrade_schema(database)[1]


def upgrade_schema(
    database: Database, *, target: str | None = None
) -> tuple[SchemaState, SchemaState]:
    """Upgrade ``database`` to the newest revision (or ``target``): the state before and after.

    An empty database gets the current schema from the metadata, unless a ``target`` is given:
    then the revisions run from the first (how tests build a database of an old release).
    Everything happens in one transaction: a revision that fails (or data that would break a
    foreign key on SQLite) rolls every revision back and raises; the database is as it was.
    """
    with database.migration() as connection:
        _lock(connection)
        before = read_state(connection)
        if not before.known:
            raise _refusal(before, database.url.render_as_string(hide_password=True))
        if before.revision is None and target is None:
            _create(connection)
            return before, read_state(connection)
        if before.revision is not None and not before.stamped:
            _context(connection).stamp(scripts(), before.revision)
        _migrate(connection, target or "head")
        _check_references(connection)
        return before, read_state(connection)


def _migrate(connection: Connection, target: str) -> None:
    directory = scripts()
    context = _context(
        connection,
        fn=lambda revision, _context: directory._upgrade_revs(target, revision),
        script=directory,
    )
    with Operations.context(context):
        context.run_migrations()


def _check_references(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL checked every foreign key as the revisions ran
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _key = broken[0]
        raise SchemaUpgradeFailed(
            revision=head(),
            reason=f"{len(broken)} row(s) reference missing rows, the first in {table!r} "
            f"(rowid {rowid}) referencing {parent!r}",
        )


def include_name(name: str | None, kind: str, _parent: object) -> bool:
    """Whether a comparison with the metadata looks at ``name`` (not at others' tables)."""
    return kind != "table" or name not in FOREIGN_TABLES


@contextmanager
def comparison(connection: Connection) -> Iterator[MigrationContext]:
    """A migration context for comparing the database with the metadata (the drift test)."""
    yield _context(connection, include_name=include_name, compare_type=True)


__all__ = [
    "FOREIGN_TABLES",
    "UPGRADE_COMMAND",
    "VERSION_TABLE",
    "SchemaState",
    "comparison",
    "head",
    "include_name",
    "on_database",
    "prepare",
    "read_state",
    "state",
    "upgrade_schema",
]
