"""A run's picture draws each node's current task: after a successful Retry Task the node is the
new task's status with its attempts counted, not the failed attempt's red; and the hints printed
for deferred tasks fit the node (the results its tree's conditions read, a wait's firing time,
the routine run a call waits for), each followed to the end here to show it is right.

The pictures are checked on the DOT text (no Graphviz needed); the hints on the real ``treeflow``
command against a SQLite file, with trees written to a scratch folder.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from engine import Engine, Handler, HandlerContext, Parameter, RunStatus, TaskStatus, hookimpl
from engine.tree.picture import STATUS_FILL, node_label, retried_tasks, run_dot
from engine.tree.reads import condition_reads

from .support import run_treeflow, small_tree, stalling_routine, start_small


class Flaky:
    """``tests_flaky_v1`` fails while ``failures`` is above zero, then returns ``sent``."""

    def __init__(self) -> None:
        self.failures = 1

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("the mail server said no")
        return {"sent": "yes"}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_flaky_v1", self.execute, parameters=(Parameter("to"),))]


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture
def eng(database_url: str, flaky: Flaky) -> Iterator[Engine]:
    with Engine(database_url, plugins=[flaky]) as engine:
        engine.load_tree(
            small_tree(
                "Mail",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                    "Send": {"handler": "tests_flaky_v1", "connectors": [{"to": "Done"}]},
                    "Done": {"handler": "system_noop_v1"},
                },
            )
        )
        yield engine


def _node_line(dot: str, node: str) -> str:
    [line] = [line for line in dot.splitlines() if line.strip().startswith(f"{node} [")]
    return line


def _retry(engine: Engine, run_id: int) -> None:
    [error] = [e for e in engine.get_run(run_id).errors if e.status == "Active"]
    engine.resolve_error(error.id, "Retry Task")
    engine.run_until_idle()


def test_a_node_retried_successfully_is_drawn_closed_with_its_attempts(eng: Engine) -> None:
    run_id = start_small(eng, "Mail")
    _retry(eng, run_id)
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    sends = [t for t in run.tasks if t.name == "Send"]
    assert [t.status for t in sends] == [TaskStatus.FAILED, TaskStatus.CLOSED]

    line = _node_line(run_dot(eng.tree_of_run(run), run), "Send")

    assert "\\nClosed (2 attempts)" in line
    assert f'fillcolor="{STATUS_FILL["Closed"]}"' in line
    assert "Failed" not in line
    assert node_label(sends, retried_tasks(run)) == "Closed (2 attempts)"


def test_a_node_that_fails_again_after_a_retry_is_drawn_failed_with_its_attempts(
    eng: Engine, flaky: Flaky
) -> None:
    flaky.failures = 2
    run_id = start_small(eng, "Mail")
    _retry(eng, run_id)
    run = eng.get_run(run_id)
    assert run.status is RunStatus.FAILED

    line = _node_line(run_dot(eng.tree_of_run(run), run), "Send")

    assert "\\nFailed (2 attempts)" in line
    assert f'fillcolor="{STATUS_FILL["Failed"]}"' in line


def test_a_failed_task_not_yet_retried_is_the_current_one(eng: Engine) -> None:
    run = eng.get_run(start_small(eng, "Mail"))
    assert retried_tasks(run) == frozenset()
    assert "\\nFailed" in _node_line(run_dot(eng.tree_of_run(run), run), "Send")


# -- what conditions read ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "reads"),
    [
        ("results['Review']['Status'] == 'Approved'", [("Review", "Status", "==", "Approved")]),
        ("'No' != results.Review.Status", [("Review", "Status", "!=", "No")]),
        (
            "results['A']['x'] == '1' and results['B']['y'] > 2",
            [("A", "x", "==", "1"), ("B", "y", None, None)],
        ),
        ("inputs['Office'] == 'Yes'", []),
        ("results[name]['x'] == 'y'", []),  # a node named by a variable is not stated
    ],
)
def test_condition_reads_name_the_node_the_result_and_the_constant(
    condition: str, reads: list[tuple[str, str, str | None, str | None]]
) -> None:
    assert condition_reads(condition) == reads


# -- hints, followed -----------------------------------------------------------------------------

HINT = re.compile(r"^  (treeflow deferred .+)$", re.M)


def _write_trees(folder: Path, *trees: dict[str, object]) -> Path:
    folder.mkdir()
    for number, tree in enumerate(trees):
        (folder / f"tree{number}.yaml").write_text(yaml.safe_dump(tree), encoding="utf-8")
    return folder


@pytest.fixture
def treeflow(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    yield tmp_path, ["--database", f"sqlite:///{tmp_path / 't.db'}"]


def _call(tmp_path: Path, flags: list[str], *args: str) -> str:
    done = run_treeflow(*args, *flags, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_hint_of_a_deferred_node_gives_the_results_its_conditions_read_and_works(
    treeflow: tuple[Path, list[str]],
) -> None:
    tmp_path, flags = treeflow
    trees = _write_trees(
        tmp_path / "trees",
        small_tree(
            "Expense",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Approve"}]},
                "Approve": {
                    "handler": "utilities_defer_v1",
                    "defers": True,
                    "connectors": [
                        {"to": "Pay", "condition": "results['Approve']['Decision'] == 'Pay it'"},
                        {"to": "Refuse", "condition": "results['Approve']['Decision'] != 'Pay it'"},
                    ],
                },
                "Pay": {"handler": "system_noop_v1"},
                "Refuse": {"handler": "system_noop_v1"},
            },
        ),
    )
    flags += ["--trees", str(trees)]

    shown = _call(tmp_path, flags, "run", "Expense")

    assert (
        "Its tree's conditions read Decision (== 'Pay it' to Pay, != 'Pay it' to Refuse)" in shown
    )
    assert 'name="Status"' not in shown  # not the one-size Status=Approved hint
    [command] = HINT.findall(shown)
    done = _call(tmp_path, flags, *shlex.split(command)[1:])
    assert re.search(r"^\W*Pay\W+Closed", done, re.M), done
    assert "Completed" in done.splitlines()[0]


def test_a_node_no_condition_reads_is_completed_without_results(
    treeflow: tuple[Path, list[str]],
) -> None:
    tmp_path, flags = treeflow
    trees = _write_trees(
        tmp_path / "trees",
        small_tree(
            "Hold",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Hold"}]},
                "Hold": {"handler": "utilities_defer_v1", "defers": True},
            },
        ),
    )
    flags += ["--trees", str(trees)]

    shown = _call(tmp_path, flags, "run", "Hold")

    assert "Complete it with (no condition of its tree reads its results):" in shown
    [command] = HINT.findall(shown)
    assert "--results" not in command
    assert "Completed" in _call(tmp_path, flags, *shlex.split(command)[1:]).splitlines()[0]


def test_the_hint_of_a_wait_says_when_it_fires_and_that_a_worker_fires_it(
    treeflow: tuple[Path, list[str]],
) -> None:
    tmp_path, flags = treeflow
    flags += ["--trees", str(Path(__file__).resolve().parents[1] / "trees")]

    shown = _call(tmp_path, flags, "run", "Cooling Off Period", "--source-id", "O-1")

    [due] = re.findall(r"^│ Cooling Off\s+│ Deferred │ due_at: (\S+)", shown, re.M)
    assert "Cooling Off is a wait; its token is " in shown
    assert f"Its timer fires at {due}; a running worker (treeflow worker" in shown
    assert 'name="Status"' not in shown
    [command] = HINT.findall(shown)
    assert "Completed" in _call(tmp_path, flags, *shlex.split(command)[1:]).splitlines()[0]


def test_the_hint_of_a_routine_call_names_the_run_it_waits_for(
    treeflow: tuple[Path, list[str]],
) -> None:
    tmp_path, flags = treeflow
    routine, caller = stalling_routine("routine_hold_v1", "Hold Routine", "Call")
    flags += ["--trees", str(_write_trees(tmp_path / "trees", routine, caller))]

    shown = _call(tmp_path, flags, "run", "Caller")

    [child] = re.findall(r"^Call waits for run (\d+) of routine Hold Routine \(Started\); "
                         r"see: treeflow runs show (\d+)$", shown, re.M)  # fmt: skip
    assert child[0] == child[1] != "1"
    assert "Call is deferred" not in shown  # its token is the routine's to use, not a person's
    child_shown = _call(tmp_path, flags, "runs", "show", child[0])
    assert "A routine's run, called by run 1." in child_shown
    assert "Hold is deferred; its token is" in child_shown
