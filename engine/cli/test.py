"""``treeflow test``: run tree test cases (``engine.testing``), or write one from a finished run.

``treeflow test [PATH...]`` finds the ``*.tree-test.yaml`` files under each PATH (default
``trees/``), runs every case in an engine of its own, prints PASS or FAIL per case (with a diff
of what differed) and exits 1 if any case failed or any test file is invalid. A test file's
trees are those of ``--trees`` if given, else of the folder holding its ``tests/`` folder (the
layout ``trees/tests/NAME.tree-test.yaml``), else of its own folder. ``--coverage`` adds each
tree's node and connector coverage. ``--from-run ID`` writes a case from run ID of
``--database`` instead (to ``--output``, or standard output).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml
from rich.markup import escape
from rich.table import Table

from engine.cli.support import console, database_option, err_console, open_engine
from engine.errors import TreeTestError
from engine.records import TreeKey
from engine.testing.cases import TestFile, read_test_file
from engine.testing.coverage import TreeCoverage, add_runs
from engine.testing.from_run import case_from_run
from engine.testing.running import CaseResult, run_case
from engine.tree.files import TEST_SUFFIX

HEADER = "# Written by treeflow test --from-run: a regression test of the run as it went.\n"


def find_test_files(paths: tuple[str, ...]) -> list[Path]:
    """The test files under ``paths``: directories searched, files taken as given, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        found.extend(sorted(path.rglob(f"*{TEST_SUFFIX}")) if path.is_dir() else [path])
    return list(dict.fromkeys(found))


def trees_for(file: Path, trees: str | None) -> list[Path]:
    if trees:
        return [Path(trees)]
    folder = file.parent
    return [folder.parent if folder.name == "tests" else folder]


def _report(result: CaseResult) -> None:
    where = f"{result.file.path}:{result.case.line}" if result.case.line else str(result.file.path)
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    console.print(
        f"{verdict} {escape(where)} {escape(result.case.name)}", highlight=False, soft_wrap=True
    )
    for failure in result.failures:
        console.print(
            escape("    " + failure.replace("\n", "\n    ")), highlight=False, soft_wrap=True
        )


def _coverage_table(coverage: dict[TreeKey, TreeCoverage]) -> Table:
    table = Table(show_header=True, header_style="bold", title="Coverage")
    for column in ("Tree", "Nodes", "Connectors", "Not reached"):
        table.add_column(column)
    for key in sorted(coverage, key=str):
        found = coverage[key]
        nodes, connectors = len(found.tree.nodes), len(found.all_connectors)
        missed = [*found.missed_nodes()]
        missed += [f"{c.source} -> {c.target}" for c in found.missed_connectors()]
        table.add_row(
            escape(key.name),
            f"{nodes - len(found.missed_nodes())}/{nodes}",
            f"{connectors - len(found.missed_connectors())}/{connectors}",
            escape(", ".join(missed)),
        )
    return table


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--trees", help="Folder or file of the trees tested (default: beside the tests).")
@click.option("--coverage", is_flag=True, help="Show each tree's node and connector coverage.")
@click.option("--from-run", "from_run", type=int, help="Write a test case from this finished run.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --from-run: the file to write (default: standard output).",
)
@database_option
def tree_test(
    paths: tuple[str, ...],
    trees: str | None,
    coverage: bool,
    from_run: int | None,
    output: Path | None,
    database: str,
) -> None:
    """Run the tree test cases under PATHS (default trees/): PASS or FAIL per case, with diffs."""
    if from_run is not None:
        with open_engine(database, None) as engine:
            text = HEADER + yaml.safe_dump(
                case_from_run(engine, from_run), sort_keys=False, allow_unicode=True, width=100
            )
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            err_console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
        return
    files = find_test_files(paths or ("trees/",))
    if not files:
        where = ", ".join(paths or ("trees/",))
        raise click.ClickException(f"no *{TEST_SUFFIX} files under {where}")
    results: list[CaseResult] = []
    invalid = 0
    for path in files:
        try:
            test_file: TestFile = read_test_file(path)
        except TreeTestError as exc:
            invalid += 1
            for problem in exc.problems:
                err_console.print(
                    f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True
                )
            continue
        for case in test_file.cases:
            result = run_case(test_file, case, trees_for(path, trees))
            _report(result)
            results.append(result)
    failed = sum(not result.passed for result in results)
    if coverage:
        reached: dict[TreeKey, TreeCoverage] = {}
        for result in results:
            add_runs(reached, zip(result.runs, result.trees, strict=True))
        console.print(_coverage_table(reached))
    summary = f"{len(results) - failed} passed, {failed} failed"
    if invalid:
        summary += f", {invalid} invalid test file(s)"
    console.print(summary, highlight=False, soft_wrap=True)
    if failed or invalid:
        sys.exit(1)


__all__ = ["find_test_files", "tree_test"]
