"""``treeflow purge``: delete finished runs older than a duration, and the retention setting.

``--older-than 30d`` takes call trees whose top-level run finished (last changed) more than 30
days ago, in ``--status`` (default Completed and Cancelled), optionally of one ``--tree``;
``--dry-run`` counts them; ``--archive FILE.jsonl`` appends each run, with its tasks, triggers,
errors and firings, as one JSON line before deleting it (Kinetic's archive). Deleting goes in
batches of ``--batch-size`` call trees, one short transaction each, with a progress bar on a
terminal. ``retention_option`` is the same policy run on a schedule by ``serve`` and ``worker``
(``--retain-runs 30d``, ``TREEFLOW_RETAIN_RUNS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.cli.support import console, engine_options, err_console, open_engine
from engine.schedule.retention import RetentionPolicy

F = TypeVar("F", bound=Callable[..., Any])
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


class Duration(click.ParamType):  # type: ignore[type-arg]  # click 8.2+ makes it generic
    """A duration such as ``90s``, ``15m``, ``12h``, ``30d`` or ``2w``, as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.fullmatch(str(value).strip())
        if found is None:
            self.fail(
                f"{value!r} is not a duration: a number and s, m, h, d or w (30d)", param, ctx
            )
        return float(found.group(1)) * _UNITS[found.group(2)]


def _statuses(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _policy(ctx: click.Context, _param: click.Parameter, value: float | None) -> Any:
    if value is None:
        return None
    try:
        return RetentionPolicy.keeping(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx) from exc


def retention_option(function: F) -> F:
    """``--retain-runs``: the scheduled retention policy of ``serve`` and ``worker``."""
    return click.option(
        "--retain-runs",
        "retention",
        envvar="TREEFLOW_RETAIN_RUNS",
        type=Duration(),
        callback=_policy,
        help="Purge Completed and Cancelled runs this long after they finished (30d), hourly, "
        "in the process that runs the scheduler. Without it, runs are kept.",
    )(function)


@click.command()
@click.option(
    "--older-than",
    required=True,
    type=Duration(),
    help="Runs finished (last changed) more than this long ago: 90s, 15m, 12h, 30d, 2w.",
)
@click.option(
    "--status",
    "statuses",
    callback=_statuses,
    help="Top-level run statuses to purge, comma-separated [default: Completed,Cancelled].",
)
@click.option("--tree", "tree_name", help="Only runs of this tree name.")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; delete nothing.")
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append each purged run to this JSON Lines file before deleting it.",
)
@click.option(
    "--batch-size",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Call trees deleted per transaction (smaller: shorter locks).",
)
@engine_options
def purge(
    older_than: float,
    statuses: tuple[str, ...] | None,
    tree_name: str | None,
    dry_run: bool,
    archive: Path | None,
    batch_size: int,
    database: str,
    trees: str,
) -> None:
    """Delete finished runs older than --older-than with their tasks, triggers, errors and
    firings (whole call trees; never a run still open or with an open trigger)."""
    criteria: dict[str, Any] = {
        "older_than": older_than,
        "statuses": statuses,
        "tree_name": tree_name,
    }
    with open_engine(database, None) as engine:
        total = engine.count_purgeable(**criteria)
        progress = Progress(
            TextColumn("would purge" if dry_run else "purging"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("call trees"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        with progress:
            bar = progress.add_task("purge", total=total)
            counts = engine.purge_runs(
                **criteria,
                dry_run=dry_run,
                archive=archive,
                batch_size=batch_size,
                progress=lambda done: progress.advance(bar, done.call_trees),
            )
    table = Table(show_header=True, header_style="bold", title=None)
    table.add_column("Would purge" if dry_run else "Purged")
    table.add_column("Rows", justify="right")
    for name, count in counts.as_dict().items():
        table.add_row(name.replace("_", " "), f"{count:,}")
    console.print(table)
    if archive is not None and not dry_run:
        console.print(f"archived to {archive}", highlight=False, soft_wrap=True)


__all__ = ["Duration", "purge", "retention_option"]
