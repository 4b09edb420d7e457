"""What the ``treeflow`` commands share: the engine options, opening an engine, the consoles.

Kept apart from ``engine.cli.main`` so that command groups in their own modules (``users``,
``serve``) can use them while ``engine.cli.main`` imports those groups.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from rich.console import Console

from engine.engine import Engine
from engine.errors import TreeflowError

DEFAULT_DATABASE = "sqlite:///treeflow.db"
DEFAULT_TREES = "trees/"

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E")  # an engine, or what a call on a database answers (treeflow db)
# No emoji codes: ``file.yaml:100: node ...`` must print ``:100:`` as written, never an emoji.
# (Markup is escaped where text meets it: ``rich.markup.escape``, or a ``Text``.)
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def database_option(function: F) -> F:
    return click.option(
        "--database",
        envvar="TREEFLOW_DATABASE_URL",
        show_envvar=True,
        default=DEFAULT_DATABASE,
        show_default=True,
        help="SQLAlchemy URL of the engine's database.",
    )(function)


def engine_options(function: F) -> F:
    function = click.option(
        "--trees",
        envvar="TREEFLOW_TREES",
        show_envvar=True,
        default=DEFAULT_TREES,
        show_default=True,
        help="Directory or file of YAML trees to load.",
    )(function)
    return database_option(function)


def trees_path(trees: str | None) -> str | None:
    """The trees to load: a missing default folder loads none, and says so on standard error
    (an engine with no trees is rarely what was meant); a missing path given is an error."""
    if not trees or Path(trees).exists():
        return trees or None
    context = click.get_current_context(silent=True)
    source = context.get_parameter_source("trees") if context else None
    if source in (None, click.core.ParameterSource.DEFAULT):
        err_console.print(
            f"treeflow: no {trees} folder in {Path.cwd()} (the default --trees): no tree files "
            "loaded, only versions already stored in the database; give --trees or "
            "TREEFLOW_TREES",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return None
    raise click.ClickException(f"--trees / TREEFLOW_TREES: {trees!r} does not exist")


def made_engine(make: Callable[[], E]) -> E:
    """The engine ``make`` makes; what goes wrong on the way becomes one one-line CLI error."""
    try:
        return make()
    except TreeflowError as exc:
        raise click.ClickException(str(exc)) from exc
    except ModuleNotFoundError as exc:  # e.g. psycopg, for a postgresql+psycopg:// URL
        raise click.ClickException(
            f"{exc} (PostgreSQL needs: pip install 'treeflow[postgres]')"
        ) from exc
    except (sa.exc.ArgumentError, ValueError) as exc:  # the URL itself is wrong
        raise click.ClickException(f"--database / TREEFLOW_DATABASE_URL: {exc}") from exc
    except sa.exc.OperationalError as exc:
        raise click.ClickException(f"cannot open the database: {exc.orig}") from exc


@contextmanager
def in_use(engine: Engine) -> Iterator[Engine]:
    """Close ``engine`` when the block ends; its errors in the block become CLI errors."""
    with engine:
        try:
            yield engine
        except TreeflowError as exc:
            raise click.ClickException(str(exc)) from exc


def results_argument(value: str | None) -> str | None:
    """``@file`` reads the results XML from a file (``@-``: standard input)."""
    if value is None or not value.startswith("@"):
        return value
    name = value[1:]
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read the results file {name!r}: {exc}") from exc


@contextmanager
def open_engine(database: str, trees: str | None, **options: Any) -> Iterator[Engine]:
    """An engine on ``database``; the engine's own errors become one-line CLI errors.

    ``options`` are further ``Engine`` keyword arguments (``treeflow worker``'s settings).
    """
    engine = made_engine(lambda: Engine(database, trees=trees_path(trees), **options))
    with in_use(engine):
        yield engine


__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TREES",
    "console",
    "database_option",
    "engine_options",
    "err_console",
    "in_use",
    "made_engine",
    "open_engine",
    "results_argument",
    "trees_path",
]
