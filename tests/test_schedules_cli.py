"""``treeflow schedules add|list|show|remove|run-now``, run as the installed script."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import Engine, RunStatus

from .support import run_treeflow

TREE = """\
source: Tests
group: Schedules
name: Report
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Echo
  Echo:
    handler: utilities_echo_v1
    parameters:
      input: "report for {{ source.id }}: {{ inputs['Period'] }}"
"""
TREE_FLAGS = ("--source", "Tests", "--group", "Schedules", "--tree", "Report")

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def treeflow(tmp_path: Path, url: str) -> Treeflow:
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "report.yaml").write_text(TREE, encoding="utf-8")

    def call(*args: str, trees_flag: bool = False) -> subprocess.CompletedProcess[str]:
        flags = ("--database", url) + (("--trees", str(trees)) if trees_flag else ())
        return run_treeflow(*args, *flags, cwd=tmp_path, env={"COLUMNS": "200"})

    return call


def test_add_list_show_run_now_and_remove(treeflow: Treeflow, url: str) -> None:
    added = treeflow(
        "schedules", "add", "Monthly report", *TREE_FLAGS,
        "--source-id", "finance", "--value", "Period=month",
        "--monthly", "last", "--time", "18:00", "--timezone", "Europe/Dublin",
        trees_flag=True,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("Schedule 1 added; next firing 20")

    listed = treeflow("schedules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Monthly report" in listed.stdout
    assert "day last of the month at 18:00:00" in listed.stdout
    assert "Europe/Dublin" in listed.stdout

    ran = treeflow("schedules", "run-now", "1", trees_flag=True)
    assert ran.returncode == 0, ran.stderr
    assert "report for finance: month" in ran.stdout
    with Engine(url) as engine:
        [run] = engine.list_runs()
        assert (run.status, run.source_id) == (RunStatus.COMPLETED, "finance")

    shown = treeflow("schedules", "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert "Started" in shown.stdout and "run now" in shown.stdout
    assert "grace 300s, coalesce True" in shown.stdout

    removed = treeflow("schedules", "remove", "1")
    assert removed.returncode == 0, removed.stderr
    gone = treeflow("schedules", "show", "1")
    assert gone.returncode == 1
    assert "Unable to locate a schedule with the id 1" in gone.stderr


@pytest.mark.parametrize(
    ("when", "named"),
    [
        (("--cron", "0 25 * * *"), "when.cron"),
        (("--every", "0 minutes"), "when.every"),
        (("--at", "2001-02-03T04:05:06"), "when.at"),
        (("--every", "1 hour", "--timezone", "Nowhere/Land"), "timezone"),
    ],
)
def test_bad_input_exits_1_naming_it_and_adds_nothing(
    treeflow: Treeflow, url: str, when: tuple[str, ...], named: str
) -> None:
    result = treeflow("schedules", "add", "Bad", *TREE_FLAGS, *when, trees_flag=True)
    assert result.returncode == 1
    assert named in result.stderr
    with Engine(url) as engine:
        assert engine.schedules.count() == 0


def test_an_unknown_tree_and_a_missing_when_are_refused(treeflow: Treeflow) -> None:
    unknown = treeflow(
        "schedules", "add", "Bad", "--source", "Tests", "--group", "Schedules", "--tree", "Nope",
        "--every", "5 minutes", trees_flag=True,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "Unable to locate the tree 'Nope'" in unknown.stderr
    neither = treeflow("schedules", "add", "Bad", *TREE_FLAGS, trees_flag=True)
    assert neither.returncode == 2
    assert "give exactly one of --at, --every" in neither.stderr


PROCESS_TREE = """\
source: Tests
group: Schedules
name: Stocktake
process: stocktake
fields:
  Shelf:
    default: A
  Counter:
    default: nobody
    settable: false
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Echo
  Echo:
    handler: utilities_echo_v1
    parameters:
      input: "count shelf {{ values['Shelf'] }}"
"""


def test_a_schedule_names_a_process_with_fields(
    treeflow: Treeflow, url: str, tmp_path: Path
) -> None:
    (tmp_path / "trees" / "stocktake.yaml").write_text(PROCESS_TREE, encoding="utf-8")
    refused = treeflow(
        "schedules", "add", "Bad", "--process", "stocktake", "--field", "Counter=me",
        "--cron", "0 6 * * mon", trees_flag=True,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "may not set 'Counter'" in refused.stderr
    both = treeflow(
        "schedules", "add", "Bad", "--process", "stocktake", *TREE_FLAGS,
        "--cron", "0 6 * * mon", trees_flag=True,
    )  # fmt: skip
    assert both.returncode == 1
    assert "not both" in both.stderr

    added = treeflow(
        "schedules", "add", "Stocktake", "--process", "stocktake", "--field", "Shelf=B",
        "--cron", "0 6 * * mon", trees_flag=True,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("Schedule 1 added")
    ran = treeflow("schedules", "run-now", "1", trees_flag=True)
    assert ran.returncode == 0, ran.stderr
    assert "count shelf B" in ran.stdout
    shown = treeflow("schedules", "show", "1")
    assert "process stocktake" in shown.stdout and "stocktake-1" in shown.stdout
    with Engine(url) as engine:
        instance = engine.get_instance("stocktake-1")
        assert [(f.name, f.value) for f in instance.fields] == [
            ("Shelf", "B"),
            ("Counter", "nobody"),
        ]
