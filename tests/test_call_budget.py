"""The budget of child runs per call tree, on SQLite and PostgreSQL (engine.run.budgets).

The depth cap alone does not bound breadth: a routine calling itself twice used to start runs
until two million of them were made. The budget counts every routine run under one top-level run,
durably, on the tree's call_trees row; two engines processing runs of one tree at once cannot
together go past it, and raising it and Retry Task lets the refused call go on.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine import Engine, ErrorType, Handler, HandlerContext, Parameter, RunStatus, hookimpl

from .support import small_tree, start_small

CALLS_RAISE = (
    "the budget is {limit} routine runs per call tree (max_child_runs: raise it with"
    " Engine(max_child_runs=...), --max-child-runs or TREEFLOW_MAX_CHILD_RUNS, then resolve"
    " this error with Retry Task)"
)


def routine(definition_id: str, name: str, nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "routine",
        "definition_id": definition_id,
        "source": "-",
        "group": "-",
        "name": name,
        "inputs": ["Name"],
        "outputs": ["Greeting"],
        "nodes": nodes,
    }


RETURN = {"handler": "system_tree_return_v1", "parameters": {"Greeting": "{{ inputs['Name'] }}"}}
TWICE = routine(
    "routine_twice_v1",
    "Twice",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Left"}, {"to": "Right"}]},
        "Left": {
            "handler": "routine_twice_v1",
            "parameters": {"Name": "left"},
            "connectors": [{"to": "Return"}],
        },
        "Right": {"handler": "routine_twice_v1", "parameters": {"Name": "right"}},
        "Return": RETURN,
    },
)
LEAF = routine(
    "routine_leaf_v1",
    "Leaf",
    {"Start": {"handler": "system_start_v1", "connectors": [{"to": "Return"}]}, "Return": RETURN},
)


def _calls_tree(name: str, handler: str, calls: int) -> dict[str, object]:
    """Start, then ``calls`` nodes calling ``handler`` one after the other."""
    names = [f"Call {n}" for n in range(1, calls + 1)]
    nodes: dict[str, object] = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": names[0]}]}
    }
    for node, following in zip(names, [*names[1:], None], strict=True):
        nodes[node] = {
            "handler": handler,
            "parameters": {"Name": node},
            "connectors": [{"to": following}] if following else [],
        }
    return small_tree(name, nodes)


def _counted(engine: Engine) -> list[tuple[int, int]]:
    with engine.database.read() as connection:
        return [
            (row.root_run_id, row.runs)
            for row in connection.execute(sa.text("SELECT root_run_id, runs FROM call_trees"))
        ]


def _run_count(engine: Engine) -> int:
    with engine.database.read() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())


def test_a_routine_calling_itself_twice_stops_at_the_budget(database_url: str) -> None:
    with Engine(database_url, max_child_runs=30) as engine:
        engine.load_tree(TWICE)
        engine.load_tree(_calls_tree("Go", "routine_twice_v1", 1))
        run_id = start_small(engine, "Go")
        assert _run_count(engine) == 1 + 30
        assert _counted(engine) == [(run_id, 30)]
        errors = engine.list_errors(limit=100)
        # 61 calls were made (the top run's, and two in each of the 30 routine runs): 31 refused.
        assert len(errors) == 31
        assert {e.type for e in errors} == {ErrorType.BUDGET.value}
        assert {e.summary for e in errors} == {
            f"Routine call {node!r} refused: the call tree of run {run_id} has started 30"
            f" routine runs; {CALLS_RAISE.format(limit=30)}"
            for node in ("Left", "Right")
        }
        with engine.database.read() as connection:
            deepest = connection.execute(sa.text("SELECT max(call_depth) FROM runs")).scalar()
        assert deepest < 20  # the depth cap was never what stopped it


def test_raising_the_budget_and_retrying_the_call_lets_the_run_go_on(database_url: str) -> None:
    with Engine(database_url, max_child_runs=2) as engine:
        engine.load_tree(LEAF)
        engine.load_tree(_calls_tree("Three Calls", "routine_leaf_v1", 3))
        run_id = start_small(engine, "Three Calls")
        run = engine.get_run(run_id)
        [error] = run.errors
        assert (error.type, error.node) == (ErrorType.BUDGET.value, "Call 3")
        assert run.status is RunStatus.FAILED
        assert _counted(engine) == [(run_id, 2)]
    with Engine(database_url, max_child_runs=3) as raised:
        raised.load_tree(LEAF)
        raised.resolve_error(error.id, "Retry Task")
        raised.run_until_idle()
        run = raised.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("Call 3").results == {"Greeting": "Call 3"}
        assert len(run.children) == 3
        assert _counted(raised) == [(run_id, 3)]


class _Hold:
    """``tests_hold_v1``: blocks until released, so that two engines are mid-step at once."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        self.entered.set()
        assert self.release.wait(60)
        return {}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_hold_v1", self.execute, parameters=(Parameter("input"),))]


GATED = routine(
    "routine_gated_v1",
    "Gated",
    {
        "Start": {
            "handler": "system_start_v1",
            "connectors": [{"to": "Call Leaf"}, {"to": "Hold"}],
        },
        "Call Leaf": {
            "handler": "routine_leaf_v1",
            "parameters": {"Name": "{{ inputs['Name'] }}"},
            "connectors": [{"to": "Return"}],
        },
        "Hold": {"handler": "tests_hold_v1", "parameters": {"input": "{{ inputs['Name'] }}"}},
        "Return": RETURN,
    },
)
RACE = small_tree(
    "Race",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "One"}, {"to": "Two"}]},
        "One": {"handler": "routine_gated_v1", "parameters": {"Name": "one"}},
        "Two": {"handler": "routine_gated_v1", "parameters": {"Name": "two"}},
    },
)


def test_two_engines_calling_in_one_tree_at_once_stay_within_its_budget(database_url: str) -> None:
    """Both read the count (2 of 3) before either commits; the second commit is refused."""
    holds = _Hold(), _Hold()
    with (
        Engine(database_url, plugins=[holds[0]], max_child_runs=3) as first,
        Engine(database_url, plugins=[holds[1]], max_child_runs=3) as second,
    ):
        for engine in (first, second):
            for tree in (LEAF, GATED, RACE):
                engine.load_tree(tree)
        run_id = first.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Race"
        ).run_id
        assert first.runner.process(first.runner.claim(1)) == 1  # One and Two: 2 child runs
        claims = first.runner.claim(1), second.runner.claim(1)  # their Root triggers
        workers = [
            threading.Thread(target=engine.runner.process, args=(claim,))
            for engine, claim in zip((first, second), claims, strict=True)
        ]
        for worker, hold in zip(workers, holds, strict=True):
            worker.start()  # each calls Leaf (counting 3 of 3 as it reads 2), then holds
            assert hold.entered.wait(60)
        for worker, hold in zip(workers, holds, strict=True):
            hold.release.set()
            worker.join(60)
        assert _counted(first) == [(run_id, 3)]
        second.run_until_idle()  # the refused step again, from the count as it is now
        assert _counted(first) == [(run_id, 3)]
        assert _run_count(first) == 1 + 2 + 1
        one, two = (first.get_run(c.run_id) for c in first.get_run(run_id).children)
        assert len(one.children) == 1
        assert two.children == ()
        [error] = two.errors
        assert (error.type, error.node) == (ErrorType.BUDGET.value, "Call Leaf")
        assert error.summary == (
            f"Routine call 'Call Leaf' refused: the call tree of run {run_id} has started 3"
            f" routine runs; {CALLS_RAISE.format(limit=3)}"
        )
