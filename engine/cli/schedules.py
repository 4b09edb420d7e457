"""``treeflow schedules``: add, list, show, remove and run now the engine's scheduled tasks.

They work on the database directly, as the Tasks API does: a ``treeflow serve`` (or any engine
started with workers) on the same database picks a change up within its poll interval and fires
the schedules; these commands never run the scheduler themselves. ``run-now`` fires a schedule
once and processes its run here, as ``treeflow run`` does, and shows it.

A schedule starts a tree (``--source``, ``--group``, ``--tree``) or creates an instance of a
process (``--process``, with ``--field NAME=VALUE`` and ``--instance``); field values given on
the command line are text.

One of ``--at``, ``--every``, ``--weekdays``, ``--weekly``, ``--monthly`` and ``--cron`` says
when; ``--time`` gives the time of day for the weekday, weekly and monthly kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from engine.cli.output import firing_json, json_option, print_json, schedule_json
from engine.cli.support import console, database_option, engine_options, open_engine
from engine.cli.view import show_run
from engine.records import Firing, Schedule
from engine.schedule.schedules import DEFAULT_GRACE_SECONDS
from engine.schedule.when import describe

KIND_OPTIONS = ("at", "every", "weekdays", "weekly", "monthly", "cron")
OUTCOME_STYLE = {"Started": "green", "Coalesced": "yellow", "Missed": "red", "Failed": "red"}


def stamp(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def _when(options: Mapping[str, Any]) -> dict[str, Any]:
    chosen = [name for name in KIND_OPTIONS if options[name] not in (None, False)]
    if len(chosen) != 1:
        flags = ", ".join(f"--{name}" for name in KIND_OPTIONS)
        raise click.UsageError(f"give exactly one of {flags} (got {len(chosen)})")
    kind = chosen[0]
    when: dict[str, Any]
    if kind == "at":
        when = {"kind": "once", "at": options["at"]}
    elif kind == "every":
        number, _, unit = str(options["every"]).partition(" ")
        if not number.isdigit() or not unit.strip():
            raise click.BadParameter("expected 'N UNIT', e.g. '15 minutes'", param_hint="--every")
        when = {"kind": "interval", "every": int(number), "unit": unit.strip()}
    elif kind == "cron":
        when = {"kind": "cron", "cron": options["cron"]}
    else:
        when = {"kind": kind}
        if kind == "weekly":
            when["days"] = [day.strip() for day in options["weekly"].split(",")]
        if kind == "monthly":
            when["day"] = options["monthly"]
    if options["time"] is not None:
        when["time"] = options["time"]
    for bound in ("start", "end"):
        if options[bound] is not None:
            when[bound] = options[bound]
    return when


def _values(pairs: tuple[str, ...], option: str = "--value") -> dict[str, str] | None:
    if not pairs:
        return None
    values: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=option)
        values[name] = value
    return values


def _target(schedule: Schedule) -> str:
    """What a schedule starts, in a few words."""
    if schedule.process is None:
        return f"{schedule.source_name} / {schedule.source_group} / {schedule.tree_name}"
    copied = "" if schedule.instance is None else f" (fields of {schedule.instance})"
    return f"process {schedule.process}{copied}"


def _fields_text(fields: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{name}={value}" for name, value in (fields or {}).items())


@click.group()
def schedules() -> None:
    """Scheduled tasks: start a tree, or create an instance of a process, at set times."""


@schedules.command("add")
@click.argument("name")
@click.option("--source", "source_name", default="", help="The tree's source name.")
@click.option("--group", "source_group", default="", help="The tree's source group.")
@click.option("--tree", "tree_name", default="", help="The tree's name.")
@click.option("--process", help="Instead of a tree: the process to create instances of.")
@click.option("--field", "fields", multiple=True, help="A field NAME=VALUE (repeatable).")
@click.option("--instance", help="An instance of the process whose fields each firing copies.")
@click.option("--source-id", default="", help="The runs' source id.")
@click.option("--results", help="The runs' inputs as results XML.")
@click.option("--value", "values", multiple=True, help="An input NAME=VALUE (repeatable).")
@click.option("--at", help="Once, at this ISO 8601 date-time.")
@click.option("--every", help="Every 'N UNIT': seconds, minutes, hours, days, weeks, months.")
@click.option("--weekdays", is_flag=True, help="Monday to Friday, at --time.")
@click.option("--weekly", help="On these days (mon,thu), at --time.")
@click.option("--monthly", help="On this day of the month (1-31 or last), at --time.")
@click.option("--cron", help="A cron expression: 5 fields, or 6 with seconds first.")
@click.option("--time", help="Time of day, HH:MM (default 00:00).")
@click.option("--start", help="Not before this date-time (an interval counts from it).")
@click.option("--end", help="Not after this date-time.")
@click.option("--timezone", default="UTC", show_default=True, help="An IANA time zone.")
@click.option(
    "--grace",
    "grace_seconds",
    default=DEFAULT_GRACE_SECONDS,
    show_default=True,
    type=int,
    help="How late, in seconds, a firing may still start its run.",
)
@click.option("--coalesce/--no-coalesce", default=True, show_default=True)
@click.option("--enabled/--disabled", default=True, show_default=True)
@engine_options
def schedules_add(
    name: str,
    source_name: str,
    source_group: str,
    tree_name: str,
    process: str | None,
    fields: tuple[str, ...],
    instance: str | None,
    source_id: str,
    results: str | None,
    values: tuple[str, ...],
    timezone: str,
    grace_seconds: int,
    coalesce: bool,
    enabled: bool,
    database: str,
    trees: str,
    **options: Any,
) -> None:
    """Add the schedule NAME for a tree or a process; print its id and next firing."""
    when = _when(options)
    with open_engine(database, trees) as engine:
        schedule = engine.schedules.create(
            name=name,
            source_name=source_name,
            source_group=source_group,
            tree_name=tree_name,
            process=process,
            fields=_values(fields, "--field"),
            instance=instance,
            source_id=source_id,
            results=results,
            values=_values(values),
            when=when,
            timezone=timezone,
            grace_seconds=grace_seconds,
            coalesce=coalesce,
            enabled=enabled,
        )
    next_firing = stamp(schedule.next_fire_time) or "none"
    console.print(f"Schedule {schedule.id} added; next firing {next_firing}", markup=False)


@schedules.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, type=click.IntRange(0))
@json_option
@database_option
def schedules_list(limit: int, offset: int, as_json: bool, database: str) -> None:
    """List the schedules with their next firing."""
    with open_engine(database, None) as engine:
        found = engine.schedules.list(limit=limit, offset=offset)
    if as_json:
        print_json([schedule_json(schedule) for schedule in found])
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("Id", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Starts", overflow="fold")
    table.add_column("When", overflow="fold")
    table.add_column("Time zone")
    table.add_column("Enabled")
    table.add_column("Next firing", overflow="fold")
    for schedule in found:
        table.add_row(
            str(schedule.id),
            Text(schedule.name),
            Text(_target(schedule)),
            Text(describe(schedule.when)),
            schedule.timezone,
            "yes" if schedule.enabled else "no",
            stamp(schedule.next_fire_time),
        )
    console.print(table)


def _print_schedule(schedule: Schedule, history: list[Firing]) -> None:
    details = Table(show_header=False, box=None)
    details.add_column(style="bold")
    details.add_column(overflow="fold")
    for label, value in (
        ("Schedule", f"{schedule.id} {schedule.name}"),
        ("Starts", _target(schedule)),
        ("Source id", schedule.source_id),
        ("Inputs", schedule.results or _fields_text(schedule.fields)),
        ("When", f"{describe(schedule.when)} ({schedule.timezone})"),
        ("Enabled", "yes" if schedule.enabled else "no"),
        ("Misfires", f"grace {schedule.grace_seconds}s, coalesce {schedule.coalesce}"),
        ("Next firing", stamp(schedule.next_fire_time) or "none"),
    ):
        details.add_row(label, Text(value))
    console.print(details)
    table = Table(show_header=True, header_style="bold", title="History (newest first)")
    table.add_column("Fire time", no_wrap=True)
    table.add_column("Outcome")
    table.add_column("Slots")
    table.add_column("Run")
    table.add_column("Instance", overflow="fold")
    table.add_column("Reason", overflow="fold")
    for firing in history:
        table.add_row(
            stamp(firing.fire_time),
            Text(firing.outcome, style=OUTCOME_STYLE.get(firing.outcome, "")),
            str(firing.slots),
            "" if firing.run_id is None else str(firing.run_id),
            Text(firing.instance or ""),
            Text(firing.reason),
        )
    console.print(table)


@schedules.command("show")
@click.argument("schedule_id", type=int)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@json_option
@database_option
def schedules_show(schedule_id: int, limit: int, as_json: bool, database: str) -> None:
    """Show a schedule and its latest firings."""
    with open_engine(database, None) as engine:
        schedule = engine.schedules.get(schedule_id)
        history = engine.schedules.history(schedule_id, limit=limit)
    if as_json:
        print_json({**schedule_json(schedule), "history": [firing_json(f) for f in history]})
        return
    _print_schedule(schedule, history)


@schedules.command("remove")
@click.argument("schedule_id", type=int)
@database_option
def schedules_remove(schedule_id: int, database: str) -> None:
    """Remove a schedule and its history."""
    with open_engine(database, None) as engine:
        engine.schedules.delete(schedule_id)
    console.print(f"Schedule {schedule_id} removed", markup=False)


@schedules.command("run-now")
@click.argument("schedule_id", type=int)
@engine_options
def schedules_run_now(schedule_id: int, database: str, trees: str) -> None:
    """Fire a schedule once now, process its run here, and show it."""
    with open_engine(database, trees) as engine:
        firing = engine.schedules.run_now(schedule_id)
        engine.run_until_idle()
        if firing.run_id is not None:
            show_run(engine, firing.run_id)


__all__ = ["describe", "schedules"]
