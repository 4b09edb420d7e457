"""``treeflow runs cancel | again | trigger``: run control from the command line.

Each command accepts its request through the engine (``Engine.cancel_run``, ``run_again``,
``manual_trigger``), processes what is due in this process, as ``treeflow deferred`` does, and
shows the run it acted on. ``--by`` names who asks (recorded on the trigger); a manual trigger
needs it and a ``--reason``, since it is an administrator's act on a run.
"""

from __future__ import annotations

import click

from engine.cli.support import engine_options, open_engine, results_argument
from engine.cli.view import print_run
from engine.engine import RUN_AGAIN_VERSIONS


@click.command("cancel")
@click.argument("run_id", type=int)
@click.option("--reason", help="Why; stored with the Cancel trigger.")
@click.option("--by", help="Who cancels it; stored with the Cancel trigger.")
@engine_options
def runs_cancel(run_id: int, reason: str | None, by: str | None, database: str, trees: str) -> None:
    """Cancel the run RUN_ID and the routine runs under it, process it, show the run."""
    with open_engine(database, trees) as engine:
        engine.cancel_run(run_id, reason, by)
        engine.run_until_idle()
        print_run(engine.get_run(run_id))


@click.command("again")
@click.argument("run_id", type=int)
@click.option(
    "--input",
    "edits",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change one input (repeatable); the run's other inputs are kept.",
)
@click.option(
    "--version",
    type=click.Choice(RUN_AGAIN_VERSIONS),
    default="same",
    show_default=True,
    help="same: the run's own tree version; current: the tree's version now.",
)
@engine_options
def runs_again(
    run_id: int, edits: tuple[str, ...], version: str, database: str, trees: str
) -> None:
    """Start a new run of RUN_ID's tree for the same source, linked to it; show the new run."""
    inputs = {}
    for edit in edits:
        name, equals, value = edit.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{edit!r} is not NAME=VALUE", param_hint="--input")
        inputs[name] = value
    with open_engine(database, trees) as engine:
        trigger = engine.run_again(run_id, inputs=inputs, version=version)
        engine.run_until_idle()
        print_run(engine.get_run(trigger.run_id))


@click.command("trigger")
@click.argument("run_id", type=int)
@click.argument("node")
@click.option("--results", help="Results XML for the node (or @FILE, @- for stdin).")
@click.option("--reason", required=True, help="Why; stored with the Manual trigger.")
@click.option("--by", required=True, help="Who asks (an administrator); stored with it.")
@engine_options
def runs_trigger(
    run_id: int,
    node: str,
    results: str | None,
    reason: str,
    by: str,
    database: str,
    trees: str,
) -> None:
    """Resume the run RUN_ID at NODE with --results (a manual trigger); show the run."""
    with open_engine(database, trees) as engine:
        engine.manual_trigger(run_id, node, results=results_argument(results), reason=reason, by=by)
        engine.run_until_idle()
        print_run(engine.get_run(run_id))


def add_run_control(group: click.Group) -> None:
    """Add the run control commands to ``treeflow runs``."""
    for command in (runs_cancel, runs_again, runs_trigger):
        group.add_command(command)


__all__ = ["add_run_control"]
