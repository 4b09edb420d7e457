"""``treeflow errors``: list the errors recorded on runs, and resolve one.

``resolve`` accepts the resolution as the engine's API does (a Resolve trigger, refused with the
engine's own message when the action does not fit the error's type), processes it in the
embedded engine, as ``treeflow deferred`` does, and shows the run.
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from engine.cli.output import error_json, json_option, print_json
from engine.cli.support import console, engine_options, open_engine
from engine.cli.view import show_run, styled
from engine.records import RunError
from engine.statuses import ErrorStatus, ErrorType, ResolutionAction
from engine.tree.suggest import did_you_mean


def _resolution(error: RunError) -> Text:
    if error.resolution_action is None:
        return Text("")
    text = error.resolution_action
    if error.status == ErrorStatus.ACTIVE:
        text += " (queued)"
    if error.resolved_by:
        text += f" by {error.resolved_by}"
    if error.resolution_message:
        text += f": {error.resolution_message}"
    return Text(text)


WIDE_COLUMNS = 150  # below it the seven-column table squeezes the summary (see _errors_table)


@click.group()
def errors() -> None:
    """List errors recorded on runs and resolve them."""


@errors.command("list")
@click.option("--run", "run_id", type=int, help="Only errors of this run.")
@click.option(
    "--status",
    type=click.Choice(["Active", "Handled", "Resolved"], case_sensitive=False),
    help="Only errors in this status; Resolved is another name for Handled (Kinetic's word).",
)
@click.option(
    "--type",
    "error_type",
    type=click.Choice([t.value for t in ErrorType]),
    help="Only errors of this type.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, type=click.IntRange(0))
@json_option
@engine_options
def errors_list(
    run_id: int | None,
    status: str | None,
    error_type: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    database: str,
    trees: str,
) -> None:
    """List errors, newest first, with their resolutions."""
    if status == "Resolved":
        status = ErrorStatus.HANDLED.value
    with open_engine(database, None) as engine:
        found = engine.list_errors(
            run_id=run_id, status=status, error_type=error_type, limit=limit, offset=offset
        )
    if as_json:
        print_json([error_json(error) for error in found])
        return
    console.print(_errors_table(found, wide=console.width >= WIDE_COLUMNS))


def _errors_table(found: list[RunError], *, wide: bool) -> Table:
    """The errors as a table: a column each when the terminal is wide, else two columns.

    Below ``WIDE_COLUMNS`` seven columns leave the summary a few characters (it wrapped one
    character per line at 80): the narrow table keeps the id whole (``resolve`` takes it, copied
    whole) with the run and status under it, and puts node, type, summary and resolution in one
    column that wraps at words.
    """
    table = Table(show_header=True, header_style="bold")
    # The id and the type are never wrapped: the id is what ``resolve`` takes, copied whole.
    table.add_column("Error", no_wrap=True)
    if not wide:
        table.add_column("Node, type, summary, resolution", overflow="fold", min_width=24)
        for error in found:
            where = Text.assemble(f"run {error.run_id} ", styled(error.status))
            what = Text.assemble(
                (error.node, "bold"), " ", (error.type, "red"), "\n", error.summary
            )
            resolution = _resolution(error)
            if resolution.plain:
                what.append("\n")
                what.append_text(Text("resolved: ") + resolution)
            table.add_row(Text.assemble(error.id, "\n", where), what)
        return table
    table.add_column("Run")
    table.add_column("Node", overflow="fold")
    table.add_column("Type", no_wrap=True)
    table.add_column("Status")
    table.add_column("Summary", overflow="fold")
    table.add_column("Resolution", overflow="fold")
    for error in found:
        table.add_row(
            error.id,
            str(error.run_id),
            Text(error.node),
            Text(error.type),
            styled(error.status),
            Text(error.summary),
            _resolution(error),
        )
    return table


@errors.command("resolve")
@click.argument("error_id")
@click.option(
    "--action",
    required=True,
    help="One of " + ", ".join(a.value for a in ResolutionAction) + " (which apply depends on "
    "the error's type).",
)
@click.option("--message", help="Why, or what was fixed; stored with the resolution.")
@click.option("--by", "resolved_by", help="Who resolves it; stored with the resolution.")
@engine_options
def errors_resolve(
    error_id: str,
    action: str,
    message: str | None,
    resolved_by: str | None,
    database: str,
    trees: str,
) -> None:
    """Resolve the error ERROR_ID with --action, process it, show the run."""
    actions = [known.value for known in ResolutionAction]
    if action not in actions:  # the engine refuses it too; the CLI also suggests the spelling
        raise click.BadParameter(
            f"{action!r} is not an action{did_you_mean(action, actions)} (one of "
            f"{', '.join(actions)})",
            param_hint="--action",
        )
    with open_engine(database, trees) as engine:
        trigger = engine.resolve_error(error_id, action, message=message, resolved_by=resolved_by)
        engine.run_until_idle()
        show_run(engine, trigger.run_id)


__all__ = ["errors"]
