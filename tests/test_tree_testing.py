"""``treeflow test``: tree test cases run in a real in-memory engine, with given handler results.

The shipped cases under ``trees/tests/`` must pass as a user runs them (the console script, in a
subprocess), so CI runs them; the other tests write a case file into a temporary folder beside a
copy of the example trees and check the verdict, the diff, the exit status and the messages.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from engine import Engine
from engine.errors import TreeTestError
from engine.testing.cases import read_test_file

from .support import APPROVED, REGISTRATION, run_treeflow

REPO = Path(__file__).resolve().parents[1]
TREES = REPO / "trees"


def treeflow(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run_treeflow(*args, cwd=cwd, env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the example trees (without their tests): cases are written to its tests/."""
    shutil.copytree(TREES, tmp_path / "trees", ignore=shutil.ignore_patterns("tests"))
    (tmp_path / "trees" / "tests").mkdir()
    return tmp_path / "trees"


def write_case(folder: Path, text: str, name: str = "case") -> Path:
    path = folder / "tests" / f"{name}.tree-test.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_shipped_cases_pass() -> None:
    result = treeflow("test", "trees/")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "20 passed, 0 failed"
    assert sum(line.startswith("PASS trees/tests/") for line in lines) == 20


def test_validate_and_the_engine_leave_test_files_out_of_the_trees() -> None:
    result = treeflow("validate", "trees/")
    assert result.returncode == 0, result.stderr
    assert ".tree-test.yaml" not in result.stdout
    with Engine(trees=TREES) as engine:
        assert engine.tree_problems == ()


def test_a_failing_case_shows_a_diff_and_exits_1(folder: Path) -> None:
    write_case(
        folder,
        """\
        tree: Process Registration
        cases:
          - name: approved, but expected denied
            source_id: R-1
            steps:
              - complete: Review
                results: {Status: Approved}
            expect:
              status: Completed
              ran: [Start, Review, Notify Reviewer, Denied]
        """,
    )
    result = treeflow("test", str(folder))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"FAIL {folder}/tests/case.tree-test.yaml:3 approved, but expected denied",
        "    the nodes that ran (in order) differ:",
        "    --- expected",
        "    +++ actual",
        "    @@ -1,4 +1,4 @@",
        "     - Start",
        "     - Review",
        "     - Notify Reviewer",
        "    -- Denied",
        "    +- Approved",
        "0 passed, 1 failed",
    ]


def test_given_results_per_attempt_a_failure_then_a_retry(folder: Path) -> None:
    write_case(
        folder,
        """\
        tree: Process Registration
        cases:
          - name: the first mail fails, the retry is sent
            given:
              Notify Reviewer:
                - error: connection reset
                - results: {output: sent on the second try}
            steps:
              - resolve: Notify Reviewer
                action: Retry Task
              - complete: Review
                results: {Status: Approved}
            expect:
              status: Completed
              ran: [Start, Review, Notify Reviewer, Notify Reviewer, Approved]
              results:
                Notify Reviewer: {output: sent on the second try}
              errors:
                - node: Notify Reviewer
                  type: Handler Error
                  summary: "utilities_echo_v1 raised GivenHandlerError: connection reset"
        """,
    )
    result = treeflow("test", str(folder))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_a_strict_case_fails_a_node_it_gives_nothing_for(folder: Path) -> None:
    write_case(
        folder,
        """\
        tree: Parallel Checks
        cases:
          - name: strict
            strict: true
            inputs: {Attendee: Ada}
            given:
              Check Budget: {results: {output: ok}}
              Check Travel: {results: {output: ok}}
            expect:
              status: Completed
        """,
    )
    result = treeflow("test", str(folder))
    assert result.returncode == 1
    assert "    -Completed\n    +Failed" in result.stdout


def test_an_invalid_test_file_names_each_problem_and_its_line(folder: Path) -> None:
    write_case(
        folder,
        """\
        tree: Process Registration
        cases:
          - name: typo
            expcet: {status: Completed}
            steps:
              - complete: Review
                loop: /0
              - advance: two hours
        """,
    )
    result = treeflow("test", str(folder))
    assert result.returncode == 1
    path = f"{folder}/tests/case.tree-test.yaml"
    assert result.stderr.splitlines() == [
        f"error {path}:4: unknown key 'expcet' in a test case; known keys: at, expect, fields, "
        "given, inputs, name, source_id, steps, strict",
        f"error {path}:7: unknown key 'loop' in a step; known keys: action, advance, complete, "
        "loop_index, message, resolve, results, update",
        f"error {path}:8: 'advance' is seconds or 'N UNIT' (second, minute, hour, day, week), "
        "not 'two hours'",
        f"error {path}:3: a test case needs 'expect': what must hold at the end",
    ]
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed, 1 invalid test file(s)"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "given: {Notify Reviwer: {results: {output: x}}}\n    expect: {status: Started}",
            "the case names nodes 'Process Registration' has not: ['Notify Reviwer'] (Start, "
            "Review, Notify Reviewer, Approved, Denied)",
        ),
        (
            "steps: [{complete: Approved}]\n    expect: {status: Started}",
            "step at line 4: node 'Approved' has no open deferral (never ran)",
        ),
        (
            "steps: [{resolve: Review, action: Retry Task}]\n    expect: {status: Started}",
            "step at line 4: node 'Review' has no active error to resolve",
        ),
    ],
    ids=["unknown node", "no deferral", "no error"],
)
def test_a_case_that_cannot_run_says_why(folder: Path, case: str, message: str) -> None:
    write_case(folder, f"tree: Process Registration\ncases:\n  - name: c\n    {case}\n")
    result = treeflow("test", str(folder))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == f"    {message}"


def test_coverage_lists_what_no_case_reached(folder: Path) -> None:
    write_case(
        folder,
        """\
        tree: Process Registration
        cases:
          - name: approved only
            steps: [{complete: Review, results: {Status: Approved}}]
            expect: {status: Completed}
        """,
    )
    result = treeflow("test", str(folder), "--coverage")
    assert result.returncode == 0, result.stdout
    [row] = [line for line in result.stdout.splitlines() if "Process Registration" in line]
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "Process Registration",
        "4/5",
        "3/4",
        "Denied, Review -> Denied",
    ]


def test_from_run_writes_a_case_that_replays_the_run(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Engine(url, trees=TREES) as engine:
        trigger = engine.create_start(
            **REGISTRATION,
            source_id="REG-77",
            results='<results><result name="Attendee">Ada</result></results>',
        )
        engine.run_until_idle()
        token = engine.get_run(trigger.run_id).open_tokens["Review"]
        engine.create_deferred(token=token, action="Complete", results=APPROVED)
        engine.run_until_idle()
        unfinished = engine.create_start(**REGISTRATION).run_id
        engine.run_until_idle()
    written = folder / "tests" / "replay.tree-test.yaml"
    result = treeflow(
        "test", "--from-run", str(trigger.run_id), "--database", url, "-o", str(written)
    )
    assert result.returncode == 0, result.stderr
    text = written.read_text(encoding="utf-8")
    assert "complete: Review" in text and "Status: Approved" in text and "Attendee: Ada" in text
    assert "deferral_token" not in text  # a token differs from run to run
    replay = treeflow("test", str(written))
    assert replay.returncode == 0, replay.stdout
    assert replay.stdout.splitlines()[-1] == "1 passed, 0 failed"

    refused = treeflow("test", "--from-run", str(unfinished), "--database", url)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Error: run {unfinished} is Started: a test case is written from a finished run "
        "(Completed or Failed)"
    )


def test_from_run_replays_a_wait_as_an_advance_of_the_virtual_clock(
    folder: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'wait.db'}"
    now = [1_800_000_000.0]
    with Engine(url, trees=TREES, clock=lambda: now[0]) as engine:
        trigger = engine.create_start(
            source_name="Kinetic Request",
            source_group="Shop > Orders",
            tree_name="Cooling Off Period",
            source_id="ORD-1",
        )
        engine.run_until_idle()
        now[0] += 3600
        engine.run_until_idle()
        assert engine.get_run(trigger.run_id).status.value == "Completed"
    written = folder / "tests" / "wait.tree-test.yaml"
    result = treeflow(
        "test", "--from-run", str(trigger.run_id), "--database", url, "-o", str(written)
    )
    assert result.returncode == 0, result.stderr
    text = written.read_text(encoding="utf-8")
    assert "- advance: 3600.0\n" in text
    assert "at: '2027-01-15T08:00:00+00:00'" in text
    replay = treeflow("test", str(written))
    assert replay.returncode == 0, replay.stdout
    assert replay.stdout.splitlines()[-1] == "1 passed, 0 failed"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "given: {Review: {results: {Status: x}, error: boom}}",
            "4: given results are {results: {NAME: TEXT}} or {error: MESSAGE} (or a list of them,"
            " one per call)",
        ),
        (
            "at: 2026-01-01T09:00:00",
            "4: 'at' is an ISO 8601 instant with its offset (like 2026-01-01T09:00:00+00:00), not "
            "'2026-01-01T09:00:00'",
        ),
        (
            "steps: [{complete: Review, update: Review}]",
            "4: a step is a mapping with one of complete, update, advance, resolve",
        ),
        ("strict: yes", "4: 'strict' must be true or false"),
    ],
    ids=["given both", "naive at", "two step kinds", "strict: yes is a text"],
)
def test_each_check_of_a_case_names_its_line(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / "c.tree-test.yaml"
    text = f"tree: T\ncases:\n  - name: c\n    {case}\n    expect: {{status: Completed}}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TreeTestError) as caught:
        read_test_file(path)
    assert [str(problem) for problem in caught.value.problems] == [f"{path}:{message}"]
