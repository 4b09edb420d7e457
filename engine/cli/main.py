"""The ``treeflow`` command: validate trees, run them in an embedded engine, resume, inspect,
``serve`` the HTTP API and manage its ``users`` (each in its own module), and ``bench``, which
hands its arguments to the benchmark harness (``benchmarks.cli``).

Settings come from flags or ``TREEFLOW_*`` environment variables, flags winning:
``--database`` / ``TREEFLOW_DATABASE_URL`` (default ``sqlite:///treeflow.db``) and ``--trees`` /
``TREEFLOW_TREES`` (default ``trees/``). Errors the engine raises are printed as one line
(the error's own message) with exit status 1; tables are tables.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from engine.cli.db import db
from engine.cli.errors import errors
from engine.cli.explain import why
from engine.cli.graph import draw_run, graph
from engine.cli.handlers import handlers
from engine.cli.kinetic import import_kinetic
from engine.cli.output import (
    json_option,
    print_json,
    problem_json,
    run_json,
    run_summary,
    tree_json,
)
from engine.cli.purge import purge
from engine.cli.run_control import add_run_control
from engine.cli.sarif import sarif_log
from engine.cli.schedules import schedules
from engine.cli.schema import schema
from engine.cli.serve import serve
from engine.cli.support import console, engine_options, err_console, open_engine
from engine.cli.support import results_argument as _results_argument
from engine.cli.test import tree_test
from engine.cli.users import users
from engine.cli.view import show_run, styled
from engine.cli.worker import worker
from engine.engine import Engine
from engine.handlers.registry import HandlerRegistry
from engine.statuses import RunStatus
from engine.tree.expressions import Expressions
from engine.tree.files import read_tree_files, tree_files
from engine.tree.model import Tree
from engine.tree.suggest import did_you_mean


def _find_tree(engine: Engine, name: str, source: str | None, group: str | None) -> Tree:
    matches = [
        tree
        for tree in engine.trees
        if tree.key.name == name
        and (source is None or tree.key.source_name == source)
        and (group is None or tree.key.source_group == group)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(sorted(repr(t.key.name) for t in engine.trees)) or "none"
        refused = sorted({problem.file for problem in engine.tree_problems})
        also = f"; tree files refused: {', '.join(refused)}" if refused else ""
        hint = did_you_mean(name, (tree.key.name for tree in engine.trees))
        raise click.ClickException(f"no tree named {name!r} is loaded{hint} (known: {known}){also}")
    raise click.ClickException(
        f"{len(matches)} trees are named {name!r}: give --source and --group to choose"
    )


@click.group()
@click.version_option(package_name="treeflow")
def main() -> None:
    """treeflow: run task trees with durable triggers."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


main.add_command(serve)
main.add_command(users)
main.add_command(graph)
main.add_command(import_kinetic)
main.add_command(errors)
main.add_command(worker)
main.add_command(schedules)
main.add_command(schema)
main.add_command(tree_test)
main.add_command(db)
main.add_command(purge)
main.add_command(handlers)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--strict",
    is_flag=True,
    help="Make the warnings (what Kinetic Task accepts: unreachable nodes, ...) errors.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default=None,
    help="text (default), json (for scripts), or sarif (SARIF 2.1.0, for editors and CI).",
)
@json_option
def validate(
    paths: tuple[str, ...], strict: bool, output_format: str | None, as_json: bool
) -> None:
    """Validate tree files (or directories of them): each valid tree, then every problem found.

    Exits 1 when any file has a problem; the valid ones are listed all the same, as an engine
    given the same files would serve them. Warnings (what Kinetic Task accepts and an engine
    loads: unreachable nodes, a routine without a return node, a result that may be missing,
    ...) are listed too and leave the exit status 0, unless --strict makes them errors. Notes
    (results only a deferring node's completion gives) are in the json and sarif output only.
    --json is --format json.
    """
    if as_json and output_format not in (None, "json"):
        raise click.UsageError(
            f"--json is --format json; it cannot go with --format {output_format}"
        )
    output_format = "json" if as_json else output_format or "text"
    files = tree_files(paths)
    found = read_tree_files(
        files, registry=HandlerRegistry(), expressions=Expressions(), strict=strict
    )
    if output_format == "sarif":
        print_json(sarif_log(found.problems, found.warnings, found.notes))
        sys.exit(1 if found.problems else 0)
    if output_format == "json":
        print_json(
            {
                "trees": [tree_json(tree) for tree in found.trees],
                "warnings": [problem_json(warning) for warning in found.warnings],
                "notes": [problem_json(note) for note in found.notes],
                "problems": [problem_json(problem) for problem in found.problems],
            }
        )
        sys.exit(1 if found.problems else 0)
    for tree in found.trees:
        what = f"{tree.file}: {tree.key} ({len(tree.nodes)} nodes)"
        console.print(Text.assemble(("ok", "green"), " ", what), soft_wrap=True)
    for warning in found.warnings:
        err_console.print(Text.assemble(("warning", "yellow"), " ", str(warning)), soft_wrap=True)
    for problem in found.problems:
        err_console.print(Text.assemble(("error", "red"), " ", str(problem)), soft_wrap=True)
    if found.problems:
        refused = len(found.refused)
        err_console.print(
            f"{len(found.problems)} problem(s) in {refused} of {len(files)} file(s)",
            highlight=False,
        )
        sys.exit(1)


@main.command("run")
@click.argument("tree_name")
@click.option("--source", help="Source name, when several trees share TREE_NAME.")
@click.option("--group", help="Source group, when several trees share TREE_NAME.")
@click.option("--source-id", default="", help="The record the run is for.")
@click.option("--results", help="Results XML for the start node (or @FILE, @- for stdin).")
@click.option("--message", help="A message stored with the trigger.")
@engine_options
def run_tree(
    tree_name: str,
    source: str | None,
    group: str | None,
    source_id: str,
    results: str | None,
    message: str | None,
    database: str,
    trees: str,
) -> None:
    """Start TREE_NAME in an embedded engine, process it until it waits or ends, show the run."""
    with open_engine(database, trees) as engine:
        tree = _find_tree(engine, tree_name, source, group)
        trigger = engine.create_start(
            source_name=tree.key.source_name,
            source_group=tree.key.source_group,
            tree_name=tree.key.name,
            source_id=source_id,
            results=_results_argument(results),
            message=message,
        )
        engine.run_until_idle()
        show_run(engine, trigger.run_id)


@main.command()
@click.argument("token")
@click.option(
    "--action", type=click.Choice(["Complete", "Update"]), default="Complete", show_default=True
)
@click.option("--results", help="Results XML for the task (or @FILE, @- for stdin).")
@click.option("--message", help="A message stored with the trigger.")
@engine_options
def deferred(
    token: str, action: str, results: str | None, message: str | None, database: str, trees: str
) -> None:
    """Complete or update the deferred task TOKEN names, process it, show the run."""
    with open_engine(database, trees) as engine:
        trigger = engine.create_deferred(
            token=token, action=action, results=_results_argument(results), message=message
        )
        engine.run_until_idle()
        show_run(engine, trigger.run_id)


@main.group()
def runs() -> None:
    """List and show runs, say what one waits for; cancel, run again, resume at a node."""


add_run_control(runs)
runs.add_command(why)


@runs.command("list")
@click.option(
    "--status",
    type=click.Choice([status.value for status in RunStatus]),
    help="Only runs in this status.",
)
@click.option("--tree", "tree_name", help="Only runs of this tree name.")
@click.option("--source-id", help="Only runs for this source id.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, type=click.IntRange(0))
@json_option
@engine_options
def runs_list(
    status: str | None,
    tree_name: str | None,
    source_id: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    database: str,
    trees: str,
) -> None:
    """List runs, newest first."""
    with open_engine(database, None) as engine:
        found = engine.list_runs(
            status=status, tree_name=tree_name, source_id=source_id, limit=limit, offset=offset
        )
    if as_json:
        print_json([run_summary(run) for run in found])
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("Run", "Tree", "Version", "Source id", "Status"):
        table.add_column(column)
    for run in found:
        table.add_row(
            str(run.id),
            Text(run.tree_name),
            str(run.tree_version),
            Text(run.source_id),
            styled(run.status.value),
        )
    console.print(table)


@main.command(
    short_help="Run the benchmark harness (treeflow bench --help for its options).",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],  # --help goes to the benchmark's own parser
    },
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def bench(arguments: tuple[str, ...]) -> None:
    """Run the benchmarks, as python -m benchmarks does, with the same options."""
    # Imported here: the harness pulls in the peer engine and is not needed by any other command.
    # Its parts come with the bench extra; without them --help too would be a traceback.
    try:
        from benchmarks.cli import main as bench_main

        code = bench_main(list(arguments), prog="treeflow bench")
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"treeflow bench needs the bench extra ({exc.name or exc} is not installed): "
            "pip install 'treeflow[bench]'"
        ) from exc
    sys.exit(code)


@runs.command("show")
@click.argument("run_id", type=int)
@click.option(
    "--graph",
    "graph_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the run, nodes coloured by task status (.svg, .png or .dot).",
)
@json_option
@engine_options
def runs_show(
    run_id: int, graph_file: Path | None, as_json: bool, database: str, trees: str
) -> None:
    """Show one run: each node, its status, its results, open deferral tokens."""
    with open_engine(database, None) as engine:
        if as_json:
            run = engine.get_run(run_id)
            print_json(run_json(run))
        else:
            run = show_run(engine, run_id)
        if graph_file is not None:
            draw_run(engine, run, graph_file)


__all__ = ["main"]
