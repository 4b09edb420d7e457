"""The ``treeflow`` command, run as the installed console script in a real subprocess.

Every case starts the script with ``--database sqlite:///<tmp>/t.db --trees <repo>/trees`` (or
the matching ``TREEFLOW_*`` variables) and asserts on what it prints, its exit status and the
rows it left in the database.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import Engine, Run, RunStatus, TaskStatus

from .support import run_treeflow

TREES = Path(__file__).resolve().parents[1] / "trees"
APPROVED = '<results><result name="Status">Approved</result></results>'
TOKEN_LINE = re.compile(
    r"treeflow deferred ([0-9a-f]{40}) --action Complete --results '(.+)'$", re.M
)
RUN_HEADER = re.compile(r"^Run (\d+) of (.+) \(version (\d+), source id '(.*)'\): (\w+)$", re.M)

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def treeflow(tmp_path: Path, url: str) -> Treeflow:
    """``treeflow ARGS... --database <tmp>/t.db --trees <repo>/trees``, from a scratch folder."""

    def call(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        flags = ("--database", url, "--trees", str(TREES))
        return run_treeflow(*args, *flags, cwd=tmp_path, stdin=stdin)

    return call


def started(result: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """The run id and the open deferral token a ``run`` printed."""
    assert result.returncode == 0, result.stderr
    header = RUN_HEADER.search(result.stdout)
    token = TOKEN_LINE.search(result.stdout)
    assert header is not None, result.stdout
    assert token is not None, result.stdout
    return int(header.group(1)), token.group(1)


def row(output: str, node: str) -> str:
    """The table row of ``node`` (its first line)."""
    match = re.search(rf"^\W*{re.escape(node)}\W+(\w+)", output, re.M)
    assert match is not None, output
    return match.group(1)


def stored_run(url: str, run_id: int) -> Run:
    with Engine(url) as engine:
        return engine.get_run(run_id)


# -- run -----------------------------------------------------------------------------------------


def test_run_pauses_at_review_and_prints_its_token_and_how_to_resume(treeflow: Treeflow) -> None:
    result = treeflow("run", "Process Registration", "--source-id", "REG-1001")

    _, token = started(result)
    header = RUN_HEADER.search(result.stdout)
    assert header is not None
    assert header.groups()[1:] == ("Process Registration", "1", "REG-1001", "Started")
    assert row(result.stdout, "Start") == "Closed"
    assert row(result.stdout, "Review") == "Deferred"
    assert row(result.stdout, "Notify Reviewer") == "Closed"
    assert f"Review is deferred; its token is {token}." in result.stdout
    assert TOKEN_LINE.search(result.stdout).group(2) == APPROVED  # type: ignore[union-attr]
    assert result.stderr == ""


def test_run_stores_the_run_with_review_deferred_under_the_printed_token(
    treeflow: Treeflow, url: str
) -> None:
    run_id, token = started(treeflow("run", "Process Registration", "--source-id", "REG-7"))

    run = stored_run(url, run_id)
    assert run.status is RunStatus.STARTED
    assert run.source_id == "REG-7"
    assert run.open_tokens == {"Review": token}


def test_run_of_an_unknown_tree_exits_1_naming_it_and_the_known_trees(treeflow: Treeflow) -> None:
    result = treeflow("run", "Process Refund")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no tree named 'Process Refund' is loaded" in result.stderr
    assert "'Process Registration'" in result.stderr


def test_run_with_malformed_results_exits_1_naming_line_and_column_and_writes_no_run(
    treeflow: Treeflow, url: str
) -> None:
    result = treeflow("run", "Process Registration", "--results", "<results>\n<result name='A'>")

    assert result.returncode == 1
    assert re.search(r"Invalid results XML at line 2, column \d+", result.stderr), result.stderr
    listed = treeflow("runs", "list")
    assert listed.returncode == 0
    assert "Process Registration" not in listed.stdout
    with Engine(url) as engine:
        assert engine.list_runs() == []


def test_run_reads_results_from_a_file_given_as_at_file(
    treeflow: Treeflow, url: str, tmp_path: Path
) -> None:
    results = tmp_path / "inputs.xml"
    results.write_text('<results><result name="Attendee">Ada</result></results>', "utf-8")

    result = treeflow("run", "Parallel Checks", "--results", f"@{results}")

    assert result.returncode == 0, result.stderr
    assert "budget ok for Ada; travel ok; calendar ok" in result.stdout
    header = RUN_HEADER.search(result.stdout)
    assert header is not None
    run = stored_run(url, int(header.group(1)))
    assert run.inputs == {"Attendee": "Ada"}
    assert run.status is RunStatus.COMPLETED


def test_run_reads_results_from_standard_input_given_as_at_dash(treeflow: Treeflow) -> None:
    stdin = '<results><result name="Attendee">Grace</result></results>'

    result = treeflow("run", "Parallel Checks", "--results", "@-", stdin=stdin)

    assert result.returncode == 0, result.stderr
    assert "budget ok for Grace" in result.stdout


def test_run_with_a_missing_results_file_exits_1_naming_it(
    treeflow: Treeflow, tmp_path: Path
) -> None:
    result = treeflow("run", "Process Registration", "--results", "@missing.xml")

    assert result.returncode == 1
    assert "cannot read the results file 'missing.xml'" in result.stderr
    assert "Traceback" not in result.stderr


# -- deferred ------------------------------------------------------------------------------------


def test_deferred_complete_closes_review_follows_approved_and_completes_the_run(
    treeflow: Treeflow, url: str
) -> None:
    run_id, token = started(treeflow("run", "Process Registration", "--source-id", "REG-1"))

    result = treeflow("deferred", token, "--action", "Complete", "--results", APPROVED)

    assert result.returncode == 0, result.stderr
    assert RUN_HEADER.search(result.stdout).group(5) == "Completed"  # type: ignore[union-attr]
    assert row(result.stdout, "Review") == "Closed"
    assert row(result.stdout, "Approved") == "Closed"
    assert "Denied" not in result.stdout
    assert "treeflow deferred" not in result.stdout
    run = stored_run(url, run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Review").results["Status"] == "Approved"
    assert run.task("Approved").results == {"output": "Registration REG-1 approved: Approved"}


def test_deferred_with_a_completed_token_exits_1_with_the_seed_message(
    treeflow: Treeflow,
) -> None:
    _, token = started(treeflow("run", "Process Registration"))
    assert treeflow("deferred", token, "--results", APPROVED).returncode == 0

    result = treeflow("deferred", token, "--results", APPROVED)

    assert result.returncode == 1
    assert result.stdout == ""
    expected = f"Unable to locate a task instance with the specified deferral token ({token})"
    assert result.stderr.strip() == f"Error: {expected}"


def test_deferred_with_an_unknown_token_exits_1_with_the_seed_message(treeflow: Treeflow) -> None:
    result = treeflow("deferred", "0" * 40)

    assert result.returncode == 1
    expected = f"Unable to locate a task instance with the specified deferral token ({'0' * 40})"
    assert expected in result.stderr


def test_deferred_update_keeps_review_deferred_and_merges_its_results(
    treeflow: Treeflow, url: str
) -> None:
    run_id, token = started(treeflow("run", "Process Registration"))
    progress = '<results><result name="Note">[/b] read half of it</result></results>'

    result = treeflow("deferred", token, "--action", "Update", "--results", progress)

    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "Review") == "Deferred"
    assert "Note: [/b] read half of it" in result.stdout  # values are data, never markup
    assert f"treeflow deferred {token} --action Complete" in result.stdout
    task = stored_run(url, run_id).task("Review")
    assert task.status is TaskStatus.DEFERRED
    assert task.results["Note"] == "[/b] read half of it"
    assert task.results["deferral_token"] == token


def test_deferred_refuses_an_action_other_than_complete_or_update(treeflow: Treeflow) -> None:
    result = treeflow("deferred", "0" * 40, "--action", "Cancel")

    assert result.returncode == 2
    assert "'Cancel' is not one of 'Complete', 'Update'" in result.stderr


# -- runs ----------------------------------------------------------------------------------------


def test_runs_list_refuses_a_status_that_is_not_a_run_status(treeflow: Treeflow) -> None:
    result = treeflow("runs", "list", "--status", "Finished")
    assert result.returncode == 2
    assert "Invalid value for '--status': 'Finished' is not one of" in result.stderr
    assert "'Staged', 'Started', 'Completed', 'Failed'" in result.stderr


def test_runs_list_shows_each_run_with_its_tree_source_id_and_status(treeflow: Treeflow) -> None:
    first, _ = started(treeflow("run", "Process Registration", "--source-id", "REG-1"))
    attendee = '<results><result name="Attendee">Ada</result></results>'
    completed = treeflow("run", "Parallel Checks", "--source-id", "PC-1", "--results", attendee)
    assert completed.returncode == 0, completed.stderr

    result = treeflow("runs", "list")

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if re.match(r"\W*\d+\W", line)]
    cells = [re.split(r"\s*[│|]\s*", line.strip("│| ")) for line in lines]
    assert cells == [
        ["2", "Parallel Checks", "1", "PC-1", "Completed"],
        [str(first), "Process Registration", "1", "REG-1", "Started"],
    ]


def test_runs_show_prints_the_table_of_tasks_and_the_open_token(treeflow: Treeflow) -> None:
    run_id, token = started(treeflow("run", "Process Registration", "--source-id", "REG-9"))

    result = treeflow("runs", "show", str(run_id))

    assert result.returncode == 0, result.stderr
    assert re.search(r"Node\W+Status\W+Results", result.stdout)
    assert [row(result.stdout, n) for n in ("Start", "Review", "Notify Reviewer")] == [
        "Closed",
        "Deferred",
        "Closed",
    ]
    assert "output: Please review registration REG-9" in result.stdout
    assert TOKEN_LINE.search(result.stdout).group(1) == token  # type: ignore[union-attr]


def test_runs_show_of_an_unknown_run_exits_1_naming_it(treeflow: Treeflow) -> None:
    result = treeflow("runs", "show", "42")

    assert result.returncode == 1
    assert "Unable to locate a run with the id 42" in result.stderr


# -- settings ------------------------------------------------------------------------------------


def test_settings_come_from_treeflow_environment_variables(tmp_path: Path) -> None:
    env = {
        "TREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}",
        "TREEFLOW_TREES": str(TREES),
    }

    run_id, _ = started(run_treeflow("run", "Process Registration", cwd=tmp_path, env=env))

    assert (tmp_path / "env.db").exists()
    assert not (tmp_path / "treeflow.db").exists()
    assert stored_run(env["TREEFLOW_DATABASE_URL"], run_id).tree_name == "Process Registration"


def test_a_flag_wins_over_its_environment_variable(tmp_path: Path) -> None:
    env = {
        "TREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}",
        "TREEFLOW_TREES": str(tmp_path / "no-such-trees"),
    }
    flag_url = f"sqlite:///{tmp_path / 'flag.db'}"

    result = run_treeflow(
        "run", "Process Registration", "--database", flag_url, "--trees", str(TREES),
        cwd=tmp_path, env=env,
    )  # fmt: skip

    started(result)
    assert (tmp_path / "flag.db").exists()
    assert not (tmp_path / "env.db").exists()


def test_a_trees_path_that_does_not_exist_is_an_error_naming_it(tmp_path: Path, url: str) -> None:
    result = run_treeflow("run", "Process Registration", "--database", url, "--trees", "nowhere",
                          cwd=tmp_path)  # fmt: skip

    assert result.returncode == 1
    assert "--trees / TREEFLOW_TREES: 'nowhere' does not exist" in result.stderr


def test_an_unparsable_database_url_exits_1_without_a_traceback(tmp_path: Path) -> None:
    result = run_treeflow("runs", "list", "--database", "not a url", cwd=tmp_path)

    assert result.returncode == 1
    assert "--database / TREEFLOW_DATABASE_URL: Could not parse SQLAlchemy URL" in result.stderr
    assert "Traceback" not in result.stderr


# -- validate ------------------------------------------------------------------------------------


def test_validate_accepts_every_example_tree(tmp_path: Path) -> None:
    result = run_treeflow("validate", str(TREES), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(list(TREES.glob("*.yaml")))


def test_validate_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: S\ngroup: G\nname: Bad\nnodes:\n"
        "  Start: {handler: system_start_v1, connectors: [{to: Nowhere}]}\n"
        "  Odd: {handler: no_such_handler_v1}\n",
        "utf-8",
    )

    result = run_treeflow("validate", str(bad), cwd=tmp_path)

    assert result.returncode == 1
    assert re.search(rf"{re.escape(str(bad))}:6: node 'Odd': unknown handler", result.stderr)
    assert "'Nowhere'" in result.stderr
    assert re.search(r"\d+ problem\(s\) in 1 of 1 file\(s\)", result.stderr)
