"""``treeflow validate``, run as a user runs it: the installed console script, in a subprocess.

The terminal is narrow (``COLUMNS=40``) and colourless on purpose: each problem must still be
one line, ``file:line: node 'name': message``, so that it can be read, grepped and clicked.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.handlers.registry import HandlerRegistry

from .support import TREEFLOW, run_treeflow

REPO = Path(__file__).resolve().parents[1]

UNKNOWN_NODE_AND_HANDLER = """\
source: Kinetic Request
group: Tests
name: One
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Nowhere
      - to: A
  A:
    handler: utilities_ecko_v1
"""

BAD_TEMPLATE = """\
source: Kinetic Request
group: Tests
name: Two
nodes:
  Start: {handler: system_start_v1, connectors: [{to: Echo}]}
  Echo:
    handler: utilities_echo_v1
    parameters:
      input: "{{ source.id }"
"""


def treeflow(*args: str) -> subprocess.CompletedProcess[str]:
    """Narrow and colourless, so a problem that wraps or carries markup shows up."""
    return run_treeflow(*args, cwd=REPO, env={"COLUMNS": "40", "NO_COLOR": "1"})


@pytest.fixture
def bad_dir(tmp_path: Path) -> Path:
    (tmp_path / "one.yaml").write_text(UNKNOWN_NODE_AND_HANDLER, encoding="utf-8")
    (tmp_path / "two.yaml").write_text(BAD_TEMPLATE, encoding="utf-8")
    return tmp_path


def test_the_console_script_is_installed_beside_the_interpreter() -> None:
    assert TREEFLOW.is_file(), f"{TREEFLOW} is missing: pip install -e . in this virtualenv"


def test_validate_example_trees_exits_0_with_ok_per_tree() -> None:
    result = treeflow("validate", "trees")
    assert (result.returncode, result.stderr) == (0, "")
    names = sorted(path.name for path in (REPO / "trees").glob("*.yaml"))
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"ok trees/{name}" for name in names]
    assert all(line.endswith(" nodes)") for line in lines), lines


def test_validate_names_each_tree_by_source_group_and_name() -> None:
    result = treeflow("validate", "trees/process-registration.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "ok trees/process-registration.yaml: "
        "Kinetic Request :: KEG Catalog > Conference Registration :: Process Registration ("
    )


def test_validate_bad_files_exits_1_listing_every_problem_on_stderr(bad_dir: Path) -> None:
    result = treeflow("validate", str(bad_dir))
    one, two = bad_dir / "one.yaml", bad_dir / "two.yaml"
    known = ", ".join(HandlerRegistry().ids)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"error {one}:8: node 'Start': connector to unknown node 'Nowhere'",
        f"error {one}:11: node 'A': unknown handler 'utilities_ecko_v1'; known handlers: {known}"
        "; did you mean 'utilities_echo_v1'?",
        f"error {two}:9: node 'Echo': parameter 'input' does not compile: "
        "syntax error: unexpected '}' in '{{ source.id }'",
        "3 problem(s) in 2 of 2 file(s)",
    ]


def test_validate_reports_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(UNKNOWN_NODE_AND_HANDLER.replace("- to: A", "- to: A: B"), encoding="utf-8")
    result = treeflow("validate", str(broken))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error {broken}:9: invalid YAML: mapping values are not allowed here",
        "1 problem(s) in 1 of 1 file(s)",
    ]


def test_validate_fails_when_any_file_is_bad_and_lists_the_good_ones_all_the_same(
    bad_dir: Path,
) -> None:
    result = treeflow("validate", "trees", str(bad_dir / "two.yaml"))
    names = sorted(path.name for path in (REPO / "trees").glob("*.yaml"))
    assert result.returncode == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        f"ok trees/{name}" for name in names
    ]
    assert result.stderr.splitlines()[0].startswith(f"error {bad_dir / 'two.yaml'}:9: node 'Echo'")
    assert result.stderr.splitlines()[-1] == f"1 problem(s) in 1 of {len(names) + 1} file(s)"


def test_validate_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    result = treeflow("validate", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2  # click's usage error
    assert "does not exist" in result.stderr
