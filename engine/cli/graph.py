"""``treeflow graph``: draw a tree; and the drawing behind ``treeflow runs show --graph``.

A tree is found by file path or by name among the trees of ``--trees``; the picture's format
follows the output file's suffix (``.svg``, ``.png``, ``.dot``/``.gv``), and without ``-o`` the
DOT text goes to standard output, which needs no Graphviz.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.markup import escape

from engine.cli.support import DEFAULT_TREES, err_console
from engine.engine import Engine
from engine.errors import TreeError, TreeflowError
from engine.handlers.registry import HandlerRegistry
from engine.records import Run
from engine.tree.expressions import Expressions
from engine.tree.files import load_tree_files, routines_in
from engine.tree.model import Tree
from engine.tree.picture import run_dot, tree_dot, write_picture

OUTPUT_HELP = "File to draw into: .svg, .png, or .dot/.gv for DOT text."


def _load(paths: list[Path], routines: Sequence[Path] = ()) -> list[Tree]:
    """The trees under ``paths``; a routine call may name the routines under ``routines``."""
    try:
        return load_tree_files(
            paths,
            registry=HandlerRegistry(),
            expressions=Expressions(),
            routines=routines_in(routines),
        )
    except TreeError as exc:
        raise click.ClickException(str(exc)) from exc


def find_tree(tree: str, trees: str, source: str | None, group: str | None) -> Tree:
    """TREE as a file path if one exists, else the tree of that name under ``trees``."""
    if Path(tree).is_file():
        [found] = _load([Path(tree)], [Path(trees)] if Path(trees).exists() else [])
        return found
    if not Path(trees).exists():
        raise click.ClickException(f"{tree!r} is no file, and --trees {trees!r} does not exist")
    loaded = _load([Path(trees)])
    matches = [
        t
        for t in loaded
        if t.key.name == tree
        and source in (None, t.key.source_name)
        and group in (None, t.key.source_group)
    ]
    if not matches:
        known = ", ".join(sorted(repr(t.key.name) for t in loaded)) or "none"
        message = f"no file and no tree in {trees!r} is named {tree!r} (known: {known})"
        raise click.ClickException(message)
    if len(matches) > 1:
        raise click.ClickException(
            f"{len(matches)} trees are named {tree!r}: give --source and --group"
        )
    return matches[0]


def _write(dot: str, output: Path) -> None:
    try:
        fmt = write_picture(dot, output)
    except TreeflowError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {str(output)!r}: {exc}") from exc
    err_console.print(f"wrote {escape(str(output))} ({fmt})", highlight=False, soft_wrap=True)


def draw_run(engine: Engine, run: Run, output: Path) -> None:
    """Draw ``run`` on the tree version it ran on into ``output``."""
    _write(run_dot(engine.tree_of_run(run), run), output)


@click.command("graph")
@click.argument("tree")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help=OUTPUT_HELP)
@click.option("--source", help="Source name, when several trees share the name.")
@click.option("--group", help="Source group, when several trees share the name.")
@click.option(
    "--trees",
    envvar="TREEFLOW_TREES",
    show_envvar=True,
    default=DEFAULT_TREES,
    show_default=True,
    help="Directory or file of YAML trees to find TREE in by name.",
)
def graph(
    tree: str, output: Path | None, source: str | None, group: str | None, trees: str
) -> None:
    """Draw TREE (a tree file, or a tree's name): nodes with their handlers, connectors by type.

    Complete connectors are solid, Create dashed, Update dotted, each with its label and
    condition. Without -o the DOT text is printed.
    """
    dot = tree_dot(find_tree(tree, trees, source, group))
    if output is None:
        sys.stdout.write(dot)
    else:
        _write(dot, output)


__all__ = ["draw_run", "find_tree", "graph"]
