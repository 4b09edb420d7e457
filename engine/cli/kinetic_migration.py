"""What ``treeflow import-kinetic --stand-ins DIR --report FILE`` writes besides the tree.

Both add to what is there, so a folder of exports can be imported one file at a time into one
stand-ins package and one report (``engine.kinetic.stand_ins``, ``engine.kinetic.report``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from rich.text import Text

from engine.cli.support import err_console
from engine.errors import KineticImportError, Problem
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree
from engine.kinetic.report import (
    FORMATS,
    ExportReport,
    export_report,
    failed_report,
    write_report,
)
from engine.kinetic.stand_in_routines import ROUTINES_FOLDER, stand_in_routine_ids
from engine.kinetic.stand_ins import find_stand_ins, write_stand_ins
from engine.tree.files import routines_in


def report_path(
    context: click.Context, parameter: click.Parameter, path: Path | None
) -> Path | None:
    """``--report``: refused before anything is written unless it ends in a known suffix."""
    if path is not None and path.suffix.lower() not in FORMATS:
        choices = ", ".join(FORMATS)
        raise click.BadParameter(f"{str(path)!r} does not end in one of {choices}")
    return path


def _routines(trees: Path, converted: KineticTree) -> set[str]:
    """The routines ``trees`` provide (a stand-in copied there is none) and the export's own."""
    known = set(routines_in([trees])) - stand_in_routine_ids([trees]) if trees.exists() else set()
    if converted.routine:
        known.add(str(converted.definition.get("definition_id", "")))
    return known


def _write_report(path: Path, entry: ExportReport) -> None:
    try:
        write_report(path, [entry])
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def report_refusal(report: Path | None, export: Path, error: KineticImportError) -> None:
    """Record an export that could not be converted in the report, if one is asked for."""
    if report is not None:
        _write_report(report, failed_report(str(export), error))


def write_migration_outputs(
    converted: KineticTree,
    problems: Sequence[Problem],
    *,
    trees: Path,
    stand_ins: Path | None,
    report: Path | None,
) -> None:
    """Write the stand-ins package and the report entry asked for, and say what was written.

    Printed as plain text (no markup, no emoji codes: a path may hold ``:100:``).
    """
    told: list[str] = []
    if stand_ins is None and report is None:
        return
    registry = HandlerRegistry()
    routines = _routines(trees, converted)
    if stand_ins is not None:
        found = find_stand_ins([(converted.file, converted.definition)], registry, routines)
        try:
            handlers_file = write_stand_ins(stand_ins, found)
        except (OSError, KineticImportError) as exc:
            raise click.ClickException(f"cannot write the stand-ins: {exc}") from exc
        names = ", ".join(sorted(found.handlers)) or "none needed"
        told.append(f"stand-ins in {stand_ins} ({handlers_file.name}): {names}")
        if found.routines:
            folder = stand_ins / ROUTINES_FOLDER
            routines_told = ", ".join(sorted(found.routines))
            told.append(
                f"stand-in routines in {folder}: {routines_told} (put that folder beside the"
                f" trees, e.g. cp -r {folder} {trees / 'stand-in-routines'})"
            )
        told += [f"no stand-in for {i!r}: {why}" for i, why in sorted(found.refused.items())]
    if report is not None:
        entry = export_report(converted, registry=registry, routines=routines, problems=problems)
        _write_report(report, entry)
        told.append(f"report: {report}")
    for line in told:
        err_console.print(Text(line), soft_wrap=True)


__all__ = ["report_path", "report_refusal", "write_migration_outputs"]
