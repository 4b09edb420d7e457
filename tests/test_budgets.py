"""Budgets of tasks per run and rows per step, on SQLite and PostgreSQL (engine.run.budgets).

A loop inside a loop multiplies its iterations: one small request used to write hundreds of
thousands of rows in one transaction. These tests run that request scaled down under small
budgets and count every row: the run stops at the budget with one Budget Error naming it, its
other triggers wait Paused, nothing beyond is written, each transaction stays within the rows
per step, and raising the budget and Retry Task (or Skip Task) lets the run go on. Trees within
their budgets run as before, up to the exact limit.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import (
    BadRequest,
    BadResolution,
    Engine,
    ErrorStatus,
    ErrorType,
    RunStatus,
    TaskStatus,
    TriggerStatus,
)
from engine.results_xml import write_results

from .support import small_tree, start_small

OUTER = INNER = 20
TASKS_RAISE = (
    "the budget is {limit} tasks per run (max_tasks_per_run: raise it with"
    " Engine(max_tasks_per_run=...), --max-tasks-per-run or TREEFLOW_MAX_TASKS_PER_RUN, then"
    " resolve this error with Retry Task)"
)
ROWS_RAISE = (
    "the budget is {limit} rows per step (max_step_rows: raise it with"
    " Engine(max_step_rows=...), --max-step-rows or TREEFLOW_MAX_STEP_ROWS, then resolve this"
    " error with Retry Task)"
)
NESTED = small_tree(
    "Nested",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Outer"}]},
        "Outer": {
            "handler": "system_loop_head_v1",
            "parameters": {"data_source": "{{ inputs['List'] }}", "loop_path": "$[*]"},
            "connectors": [{"to": "Outer Done"}, {"to": "Inner"}],
        },
        "Inner": {
            "handler": "system_loop_head_v1",
            "parameters": {"data_source": "{{ inputs['List'] }}", "loop_path": "$[*]"},
            "connectors": [{"to": "Inner Done"}, {"to": "Cell"}],
        },
        "Cell": {"handler": "system_noop_v1", "connectors": [{"to": "Inner Done"}]},
        "Inner Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "Outer Done"}]},
        "Outer Done": {"handler": "system_loop_tail_v1"},
    },
)
NESTED_INPUTS = write_results({"List": json.dumps([0] * OUTER)})
# Every task of the nested run done: Start, the outer head and its iterations, an inner head and
# its iterations and cells in each, each inner tail, the outer tail.
NESTED_TASKS = 1 + 1 + OUTER + OUTER * (1 + 2 * INNER + 1) + 1


def _rows(engine: Engine) -> dict[str, int]:
    with engine.database.read() as connection:
        return {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("runs", "tasks", "triggers", "errors")
        }


def _trigger_statuses(engine: Engine) -> Counter[str]:
    with engine.database.read() as connection:
        return Counter(connection.execute(sa.text("SELECT status FROM triggers")).scalars())


def _start_nested(engine: Engine) -> int:
    engine.load_tree(NESTED)
    return start_small(engine, "Nested", results=NESTED_INPUTS)


def test_a_nested_loop_stops_at_the_task_budget_with_one_error_and_waits(
    database_url: str,
) -> None:
    with Engine(database_url, max_tasks_per_run=200) as engine:
        run_id = _start_nested(engine)
        run = engine.get_run(run_id)
        # The Root step: Start, the outer head and its 20 iterations. Then each outer iteration
        # adds its inner head and 20 iterations (21 tasks): 22 + 8 * 21 = 190 tasks; the ninth
        # inner head, task 191, would take the run to 211 and is refused.
        assert len(run.tasks) == 191
        assert sum(t.status is not TaskStatus.FAILED for t in run.tasks) == 190
        [error] = run.errors
        assert (error.type, error.node, error.loop_index) == ("Budget Error", "Inner", "/8")
        assert error.summary == (
            "Loop head 'Inner' refused: its 20 iterations would take run 1 from 191 to 211"
            f" tasks; {TASKS_RAISE.format(limit=200)}"
        )
        assert run.task("Inner", "/8").status is TaskStatus.FAILED
        assert not [t for t in run.tasks if t.name == "Cell"]  # their iterations wait
        assert run.status is RunStatus.FAILED
        # Closed: the Root and the first nine outer iterations. The other 11 outer iterations
        # and the 8 * 20 inner ones wait, unprocessed, for the error to be resolved.
        assert _trigger_statuses(engine) == {"Closed": 10, "Paused": 11 + 8 * INNER}
        assert _rows(engine) == {"runs": 1, "tasks": 191, "triggers": 181, "errors": 1}
        paused = engine.get_trigger(_paused_trigger(engine))
        assert paused.status is TriggerStatus.PAUSED
        assert paused.error == (
            "Paused: its run has an active Budget Error; resolving an error of the run makes it"
            " New again"
        )
        with pytest.raises(BadResolution, match="expected one of Retry Task, Skip Task, Do"):
            engine.resolve_error(error.id, "Continue Branch")
        assert engine.run_until_idle() == 0  # nothing is claimable: the run waits
        assert _rows(engine)["tasks"] == 191
    with Engine(database_url, max_tasks_per_run=NESTED_TASKS + 1) as raised:
        raised.load_tree(NESTED)
        raised.resolve_error(error.id, "Retry Task")
        raised.run_until_idle()
        run = raised.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert [e.status for e in run.errors] == [ErrorStatus.HANDLED.value]
        assert len(run.tasks) == NESTED_TASKS + 1  # the refused head's Failed task stays
        cells = Counter(t.loop_index for t in run.tasks if t.name == "Cell")
        assert cells == {f"/{i}/{j}": 1 for i in range(OUTER) for j in range(INNER)}
        assert _trigger_statuses(raised) == {"Closed": 1 + OUTER + OUTER * INNER + 1}


def _paused_trigger(engine: Engine) -> int:
    with engine.database.read() as connection:
        return int(
            connection.execute(
                sa.text("SELECT min(id) FROM triggers WHERE status = 'Paused'")
            ).scalar_one()
        )


def test_a_batch_is_committed_in_transactions_within_the_rows_per_step(
    database_url: str,
) -> None:
    """The 20 outer iterations are one batch of 20 * 41 rows: ten transactions of two each."""
    with Engine(database_url, max_step_rows=100) as engine:
        commits: list[tuple[int, str | None, str]] = []  # rows added, lease, status

        def count(_closed: object) -> None:
            with engine.database.read() as connection:
                lease, status = connection.execute(
                    sa.text("SELECT lease_owner, status FROM runs")
                ).one()
            commits.append((sum(_rows(engine).values()), lease, status))

        engine.add_close_observer(count)
        engine.load_tree(NESTED)
        run_id = engine.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Nested", results=NESTED_INPUTS
        ).run_id
        assert engine.runner.process(engine.runner.claim(1)) == 1
        assert engine.runner.process(engine.runner.claim(64)) == OUTER
        added = [after - before for (before, _, _), (after, _, _) in pairwise(commits)]
        assert added == [2 * (1 + 2 * INNER)] * 10  # a head, its 20 iterations and triggers
        # The run stays leased to the claim, its status untouched, until its last part commits.
        assert [lease is not None for _, lease, _ in commits[1:]] == [True] * 9 + [False]
        assert {status for _, _, status in commits} == {RunStatus.STARTED.value}
        with engine.database.read() as connection:  # kept at the revision its commits left
            revision = connection.execute(sa.text("SELECT revision FROM runs")).scalar_one()
        kept = engine.runner.run_cache.take(run_id, revision)
        assert kept is not None
        engine.runner.run_cache.keep(run_id, revision, kept)
        engine.run_until_idle()
        every = [after - before for (before, _, _), (after, _, _) in pairwise(commits)]
        assert max(every) <= 100
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert len(run.tasks) == NESTED_TASKS
        cells = Counter(t.loop_index for t in run.tasks if t.name == "Cell")
        assert cells == {f"/{i}/{j}": 1 for i in range(OUTER) for j in range(INNER)}


def _loop(count: int) -> dict[str, object]:
    return small_tree(
        "Loop",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
            "Each": {
                "handler": "system_loop_head_v1",
                "parameters": {"data_source": json.dumps(list(range(count))), "loop_path": "$[*]"},
                "connectors": [{"to": "Done"}, {"to": "Body"}],
            },
            "Body": {"handler": "system_noop_v1", "connectors": [{"to": "Done"}]},
            "Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "After"}]},
            "After": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ results['Each']['Count'] }} done"},
            },
        },
    )


@pytest.mark.parametrize(("iterations", "refused"), [(49, False), (50, True)], ids=["at", "over"])
def test_a_loop_head_is_held_to_the_rows_per_step_exactly(
    database_url: str, iterations: int, refused: bool
) -> None:
    """Start and the head are 2 rows; each iteration a task and a trigger: 2 + 2 * 49 = 100."""
    with Engine(database_url, max_step_rows=100) as engine:
        engine.load_tree(_loop(iterations))
        run = engine.get_run(start_small(engine, "Loop"))
        if not refused:
            assert run.status is RunStatus.COMPLETED, run.errors
            assert run.task("After").results == {"output": f"{iterations} done"}
            return
        [error] = run.errors
        assert (error.type, error.node) == (ErrorType.BUDGET.value, "Each")
        assert error.summary == (
            "Loop head 'Each' refused: its 50 iterations would add 100 rows (a task and a trigger"
            f" each) to a step of run 1 that has added 2; {ROWS_RAISE.format(limit=100)}"
        )
        assert _rows(engine) == {"runs": 1, "tasks": 2, "triggers": 1, "errors": 1}
        engine.resolve_error(error.id, "Skip Task")  # no iterations: the tail fires at once
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("After").results == {"output": "0 done"}


def _line(length: int) -> dict[str, object]:
    names = [f"Echo {n}" for n in range(1, length)]
    nodes: dict[str, object] = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": names[0]}]}
    }
    for name, following in zip(names, [*names[1:], None], strict=True):
        nodes[name] = {
            "handler": "utilities_echo_v1",
            "parameters": {"input": name},
            "connectors": [{"to": following}] if following else [],
        }
    return small_tree("Line", nodes)


@pytest.mark.parametrize(("budget", "refused"), [(12, False), (11, True)], ids=["at", "over"])
def test_a_run_is_held_to_its_tasks_exactly_and_goes_on_once_raised(
    database_url: str, budget: int, refused: bool
) -> None:
    with Engine(database_url, max_tasks_per_run=budget) as engine:
        engine.load_tree(_line(12))
        run = engine.get_run(start_small(engine, "Line"))
        if not refused:
            assert run.status is RunStatus.COMPLETED, run.errors
            assert len(run.tasks) == 12
            return
        [error] = run.errors
        assert (error.type, error.node) == (ErrorType.BUDGET.value, "Echo 11")
        assert error.summary == (
            f"Node 'Echo 11' refused: run 1 has 11 tasks; {TASKS_RAISE.format(limit=11)}"
        )
        assert [t.status for t in run.tasks].count(TaskStatus.FAILED) == 1
        assert run.task("Echo 11").results == {}  # it did not run
    with Engine(database_url, max_tasks_per_run=13) as raised:
        raised.load_tree(_line(12))
        raised.resolve_error(error.id, "Retry Task")
        raised.run_until_idle()
        run = raised.get_run(run.id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("Echo 11").results == {"output": "Echo 11"}


def test_the_default_budgets_admit_a_loop_of_the_most_iterations() -> None:
    """10,000 iterations, the most a loop runs: its head's step adds 20,002 rows, in one go."""
    with Engine() as engine:
        engine.load_tree(_loop(10_000))
        run_id = engine.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Loop"
        ).run_id
        assert engine.runner.process(engine.runner.claim(1)) == 1
        run = engine.get_run(run_id)
        assert run.errors == ()
        assert run.task("Each").results == {"Count": "10000", "Variable": ""}
        assert _rows(engine) == {"runs": 1, "tasks": 10_002, "triggers": 10_001, "errors": 0}


@pytest.mark.parametrize(
    ("setting", "value"),
    [("max_tasks_per_run", 0), ("max_child_runs", -1), ("max_step_rows", "many")],
)
def test_bad_budgets_are_refused_naming_them_and_open_nothing(
    tmp_path: Path, setting: str, value: object
) -> None:
    database = tmp_path / "never.db"
    with pytest.raises(BadRequest) as refused:
        Engine(f"sqlite:///{database}", **{setting: value})  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"Invalid {setting}: expected a whole number of 1 or more, not {value!r}"
    )
    assert not database.exists()
