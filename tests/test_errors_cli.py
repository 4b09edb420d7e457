"""``treeflow errors list`` and ``treeflow errors resolve``, run as the installed script."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import Engine, RunStatus, TaskStatus

from .support import run_treeflow

TREE = """\
source: Tests
group: Errors
name: Broken
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Greet
      - to: Check
        condition: inputs['Absent'] == 'x'
  Greet:
    handler: utilities_echo_v1
    parameters:
      input: "Hello {{ inputs['Name'] }}"
    connectors:
      - to: After
  After:
    handler: utilities_echo_v1
    parameters:
      input: after
  Check:
    handler: system_noop_v1
"""
ERROR_LINE = re.compile(r"^(.+ Error) ([0-9a-f]{32}) at '(\w*)' \((\w+)\)", re.M)

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def treeflow(tmp_path: Path, url: str) -> Treeflow:
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "broken.yaml").write_text(TREE, encoding="utf-8")

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        flags = ("--database", url, "--trees", str(trees))
        return run_treeflow(*args, *flags, cwd=tmp_path, env={"COLUMNS": "240"})

    return call


def _errors(treeflow: Treeflow) -> dict[str, str]:
    """Run the broken tree; error type -> error id, as the run's view printed them."""
    result = treeflow("run", "Broken")
    assert result.returncode == 0, result.stderr
    assert "treeflow errors resolve ERROR_ID --action ACTION" in result.stdout
    found = {m.group(1): m.group(2) for m in ERROR_LINE.finditer(result.stdout)}
    assert set(found) == {"Node Parameter Error", "Connector Error"}, result.stdout
    return found


def test_errors_list_shows_each_error_with_its_run_node_type_and_status(
    treeflow: Treeflow,
) -> None:
    ids = _errors(treeflow)
    result = treeflow("errors", "list")
    assert result.returncode == 0, result.stderr
    for error_id in ids.values():
        assert error_id in result.stdout
    assert "Node Parameter Error" in result.stdout
    assert "Connector Error" in result.stdout
    assert result.stdout.count("Active") == 2
    only = treeflow("errors", "list", "--type", "Connector Error", "--run", "1")
    assert ids["Connector Error"] in only.stdout
    assert ids["Node Parameter Error"] not in only.stdout


def test_errors_resolve_processes_the_resolution_and_shows_the_run(
    treeflow: Treeflow, url: str
) -> None:
    ids = _errors(treeflow)
    skip = treeflow(
        "errors", "resolve", ids["Node Parameter Error"], "--action", "Skip Task",
        "--message", "no name", "--by", "ops",
    )  # fmt: skip
    assert skip.returncode == 0, skip.stderr
    assert re.search(r"^Run 1 of Broken .*: Failed$", skip.stdout, re.M), skip.stdout
    cancel = treeflow("errors", "resolve", ids["Connector Error"], "--action", "Cancel Branch")
    assert cancel.returncode == 0, cancel.stderr
    assert re.search(r"^Run 1 of Broken .*: Completed$", cancel.stdout, re.M), cancel.stdout
    with Engine(url) as engine:
        run = engine.get_run(1)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Greet").status is TaskStatus.CLOSED
    assert run.task("After").results == {"output": "after"}
    assert {e.type: (e.status, e.resolution_action, e.resolved_by) for e in run.errors} == {
        "Node Parameter Error": ("Handled", "Skip Task", "ops"),
        "Connector Error": ("Handled", "Cancel Branch", None),
    }
    listed = treeflow("errors", "list", "--status", "Resolved")
    assert listed.stdout.count("Handled") == 2, listed.stdout
    assert "Skip Task by ops: no name" in listed.stdout


def test_errors_resolve_with_an_action_the_type_does_not_allow_exits_1_naming_it(
    treeflow: Treeflow, url: str
) -> None:
    ids = _errors(treeflow)
    result = treeflow("errors", "resolve", ids["Connector Error"], "--action", "Retry Task")
    assert result.returncode == 1
    assert (
        "The action 'Retry Task' cannot resolve a Connector Error: expected one of "
        "Continue Branch, Cancel Branch" in result.stderr
    )
    with Engine(url) as engine:
        assert engine.get_error(ids["Connector Error"]).resolution_action is None


def test_errors_resolve_of_an_unknown_error_exits_1_naming_it(treeflow: Treeflow) -> None:
    result = treeflow("errors", "resolve", "nope", "--action", "Do Nothing")
    assert result.returncode == 1
    assert "Unable to locate an error with the id 'nope'" in result.stderr
