"""``treeflow import-kinetic``: convert a Kinetic Task export to a YAML tree, and check it.

The YAML goes to ``-o FILE`` (never over an existing file without ``--force``) or to standard
output; the report goes to standard error: every piece kept as written (untranslated ERB,
messages), then the converted tree validated as ``treeflow validate`` would. The exit status
is 1 when the result does not validate (it is written all the same, to be fixed by hand).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from engine.cli.kinetic_migration import report_path, report_refusal, write_migration_outputs
from engine.cli.support import err_console
from engine.errors import KineticImportError, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import convert_kinetic
from engine.tree.expressions import Expressions
from engine.tree.files import routines_in
from engine.tree.loader import load_tree_text


def _say(kind: str, style: str, text: str) -> None:
    line = f"[{style}]{kind}[/{style}] {escape(text)}"
    err_console.print(line, highlight=False, soft_wrap=True)


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
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
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
    """Convert the Kinetic Task tree or routine export EXPORT (XML) into a YAML tree.

    Simple ERB look-ups and plain Ruby comparisons become templates and conditions; anything
    else is kept as written and listed. The result is validated like treeflow validate, against
    the routines declared under --trees.
    """
    if output is not None and output.exists() and not force:
        raise click.ClickException(f"{str(output)!r} exists; give --force to overwrite it")
    try:
        converted = convert_kinetic(
            export.read_bytes(), file=str(export), source=source, group=group
        )
    except KineticImportError as exc:
        report_refusal(report, export, exc)
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {str(export)!r}: {exc}") from exc
    text = converted.yaml()
    problems = []
    try:
        load_tree_text(
            text,
            file=str(output) if output else "<stdout>",
            registry=HandlerRegistry(),
            expressions=Expressions(),
            routines=routines_in([trees]) if trees.exists() else {},
        )
    except TreeError as exc:
        problems = list(exc.problems)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {str(output)!r}: {exc}") from exc
    for kept in converted.kept:
        _say("kept", "yellow", str(kept))
    for problem in problems:
        _say("error", "red", str(problem))
    where = f"wrote {output}" if output else "converted"
    what = "routine" if converted.routine else "tree"
    summary = f"{where}: {what} {converted.name!r} ({len(converted.definition['nodes'])} nodes)"
    summary += f", {len(converted.kept)} kept as written"
    if problems:
        summary += f"; it does not validate yet: {len(problems)} problem(s)"
    err_console.print(escape(summary), highlight=False, soft_wrap=True)
    write_migration_outputs(converted, problems, trees=trees, stand_ins=stand_ins, report=report)
    if problems:
        sys.exit(1)


__all__ = ["import_kinetic"]
