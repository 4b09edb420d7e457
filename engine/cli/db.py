"""``treeflow db``: the schema revision of a database, and upgrading it to this release's.

``db current`` prints the database's revision and the one this treeflow needs (``--check``
exits 1 when they differ, for deploy scripts); ``db upgrade`` applies the missing revisions in
one transaction. Engines never upgrade on their own unless told (``Engine(upgrade=True)``):
back the database up, stop or drain the old processes, run ``db upgrade``, start the new ones.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from engine.cli.support import console, database_option, made_engine
from engine.engine import Engine


@click.group()
def db() -> None:
    """The database's schema revision: show it, upgrade it."""


@db.command("current")
@click.option("--check", is_flag=True, help="Exit 1 unless the database is at this treeflow's.")
@database_option
def current(check: bool, database: str) -> None:
    """Print the database's schema revision and the one this treeflow needs."""
    state = made_engine(lambda: Engine.schema_state(database))
    if state.current:
        verdict = "[green]up to date[/green]"
    elif state.revision is None:
        verdict = "empty: the first engine (or db upgrade) creates the schema"
    elif not state.known:
        verdict = "[red]newer than this treeflow[/red]: run a treeflow that knows it"
    else:
        verdict = "[yellow]older[/yellow]: run treeflow db upgrade"
    console.print(
        f"database: {escape(state.describe())}\nthis treeflow: {state.head}\n{verdict}",
        highlight=False,
    )
    if check and not state.current:
        sys.exit(1)


@db.command("upgrade")
@database_option
def upgrade(database: str) -> None:
    """Upgrade the database's schema to this treeflow's, in one transaction.

    A database made before treeflow had revisions is recognised by its tables and stamped first.
    Back the database up before upgrading: revisions only go forward.
    """
    before, after = made_engine(lambda: Engine.upgrade_schema(database))
    if before.revision == after.revision and before.stamped:
        console.print(f"already at revision {after.revision}", highlight=False)
        return
    console.print(
        f"upgraded from {escape(before.describe())} to revision {after.revision}", highlight=False
    )


__all__ = ["db"]
