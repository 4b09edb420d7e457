"""``treeflow import-kinetic``: convert a Kinetic Task export to a YAML tree, and check it.

The YAML goes to ``-o FILE`` (never over an existing file without ``--force``) or to standard
output; the report goes to standard error: every piece kept as written (untranslated ERB,
messages), then the converted tree validated as ``treeflow validate`` would (its warnings too).

A result that does not validate is still written, to be finished by hand, but so that no engine
runs it by accident: with ``status: Inactive`` and the problems in its header comment, and, for
``-o trees/x.yaml``, under the name ``trees/x.yaml.imported``, which no engine or ``validate`` of
the folder loads (they read ``*.yaml`` and ``*.yml`` only). ``--force`` writes it as ``-o`` names
it (still Inactive). The summary line says which, and the exit status is 1. One exception: with
``--stand-ins DIR``, a result whose only problems are unknown handlers the stand-ins written in
DIR declare is written as it is (it validates once they are installed), exit status 1 all the
same. ``--stand-ins`` and ``--report`` are ``engine.cli.kinetic_migration``'s.

Every line is printed as a rich ``Text`` on consoles without emoji codes, so that
``file.yaml:100:`` and ``[brackets]`` in a message print as written.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

import click
from rich.text import Text

from engine.cli.kinetic_migration import report_path, report_refusal, write_migration_outputs
from engine.cli.support import err_console
from engine.errors import KineticImportError, Problem, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree, convert_kinetic
from engine.kinetic.stand_ins import find_stand_ins
from engine.tree.expressions import Expressions
from engine.tree.files import routines_in
from engine.tree.loader import load_tree_text
from engine.tree.routines import RoutineSignature

NOT_LOADED_SUFFIX = ".imported"  # a tree file an engine does not load: not *.yaml or *.yml
_UNKNOWN_HANDLER = re.compile(r"unknown handler '([^']+)'")


def _say(kind: str, style: str, text: str) -> None:
    err_console.print(Text.assemble((kind, style), " ", text), soft_wrap=True)


def _check(
    text: str, file: str, routines: dict[str, RoutineSignature]
) -> tuple[list[Problem], list[Problem]]:
    """The problems and the warnings of ``text`` as a tree file named ``file``."""
    try:
        tree = load_tree_text(
            text,
            file=file,
            registry=HandlerRegistry(),
            expressions=Expressions(),
            routines=routines,
        )
    except TreeError as exc:
        return list(exc.problems), []
    return [], list(tree.warnings)


def _stood_in(
    problems: list[Problem], converted: KineticTree, routines: Iterable[str], stand_ins: Path | None
) -> bool:
    """Whether every problem is an unknown handler (or routine) the stand-ins written beside it
    declare: the tree then validates once they are installed (and the stand-in routines are
    beside it), and is written as it is."""
    if stand_ins is None or not problems:
        return False
    covered = find_stand_ins([(converted.file, converted.definition)], HandlerRegistry(), routines)
    unknown = [_UNKNOWN_HANDLER.match(problem.message) for problem in problems]
    stood_in = covered.handlers.keys() | covered.routines.keys()
    return all(m is not None and m.group(1) in stood_in for m in unknown)


def _target(output: Path | None, valid: bool, force: bool) -> Path | None:
    """Where the YAML goes: OUTPUT, or beside it under a name no engine loads if it is not
    valid (unless ``force``)."""
    if output is None or valid or force:
        return output
    return output.with_name(output.name + NOT_LOADED_SUFFIX)


@click.command("import-kinetic")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file to write (e.g. trees/x.yaml); default: standard output.",
)
@click.option("--source", help="Source name for the tree (a bare <taskTree> export has none).")
@click.option("--group", help="Source group for the tree (a bare <taskTree> export has none).")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite OUTPUT if it exists, and write there even a result that does not validate.",
)
@click.option(
    "--trees",
    "trees",
    envvar="TREEFLOW_TREES",
    default="trees/",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Tree files (or a directory) declaring the routines the export may call.",
)
@click.option(
    "--stand-ins",
    "stand_ins",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write (or add to) a plugin package in DIR standing in for the handlers treeflow lacks.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=report_path,
    help="Write (or add this export to) a migration report: FILE.md or FILE.json.",
)
def import_kinetic(
    export: Path,
    output: Path | None,
    source: str | None,
    group: str | None,
    force: bool,
    trees: Path,
    stand_ins: Path | None,
    report: Path | None,
) -> None:
    """Convert the Kinetic Task tree or routine export EXPORT (XML or JSON) into a YAML tree.

    Simple ERB look-ups and plain Ruby comparisons become templates and conditions; anything
    else is kept as written and listed. The result is validated like treeflow validate, against
    the routines declared under --trees. A result that does not validate is written with
    status: Inactive, as OUTPUT.imported (not loaded by an engine) unless --force, and the
    command exits 1.
    """
    try:
        converted = convert_kinetic(
            export.read_bytes(), file=str(export), source=source, group=group
        )
    except KineticImportError as exc:
        report_refusal(report, export, exc)
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {str(export)!r}: {exc}") from exc
    routines = routines_in([trees]) if trees.exists() else {}
    text = converted.yaml()
    problems, warnings = _check(text, str(output) if output else "<stdout>", routines)
    stood_in = _stood_in(problems, converted, routines, stand_ins)
    target = _target(output, not problems or stood_in, force)
    if problems and not stood_in:  # written Inactive, its problems in its header (their lines)
        converted = converted.inactive()
        text = converted.yaml(problems)
        problems, warnings = _check(text, str(target) if target else "<stdout>", routines)
    _write(text, target, force)
    for kept in converted.kept:
        _say("kept", "yellow", str(kept))
    for warning in warnings:
        _say("warning", "yellow", str(warning))
    for problem in problems:
        _say("error", "red", str(problem))
    summary = _summary(converted, target, output, problems, stand_ins if stood_in else None)
    err_console.print(Text(summary), soft_wrap=True)
    write_migration_outputs(converted, problems, trees=trees, stand_ins=stand_ins, report=report)
    if problems:
        sys.exit(1)


def _write(text: str, target: Path | None, force: bool) -> None:
    if target is None:
        sys.stdout.write(text)
        return
    if target.exists() and not force:
        raise click.ClickException(f"{str(target)!r} exists; give --force to overwrite it")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {str(target)!r}: {exc}") from exc


def _summary(
    converted: KineticTree,
    target: Path | None,
    output: Path | None,
    problems: list[Problem],
    stood_in: Path | None,
) -> str:
    where = f"wrote {target}" if target else "converted"
    what = "routine" if converted.routine else "tree"
    summary = f"{where}: {what} {converted.name!r} ({len(converted.definition['nodes'])} nodes)"
    summary += f", {len(converted.kept)} kept as written"
    if not problems:
        return summary
    if stood_in is not None:
        return summary + (
            f"; it does not validate yet: {len(problems)} problem(s), each a handler the"
            f" stand-ins in {stood_in} declare: it validates once they are installed"
        )
    summary += f"; it does not validate yet: {len(problems)} problem(s), so it is Inactive"
    if target is not None and target != output:
        summary += f" and named {target.name!r}, which no engine loads: fix it, then rename it"
        summary += f" to {output.name if output else ''!r} and remove 'status: Inactive'"
    return summary


__all__ = ["NOT_LOADED_SUFFIX", "import_kinetic"]
