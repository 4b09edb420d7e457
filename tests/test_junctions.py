"""Junctions (system_junction_v1): regions at load, firing rules at run time, on both stores."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from engine import Engine, ErrorType, RunStatus, TaskStatus, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.loader import load_tree_data
from engine.tree.model import Tree

from .support import small_tree, start_small

SPLIT = {"handler": "system_noop_v1"}


def _when(flag: str) -> str:
    return f"inputs['{flag}'] == 'yes'"


def _inputs(**flags: str) -> str:
    flags = {"Office": "no", "Laptop": "no", "Phone": "no", **flags}
    fields = "".join(f'<result name="{k}">{v}</result>' for k, v in flags.items())
    return f"<results>{fields}</results>"


def _work_orders(name: str = "Work Orders") -> dict[str, object]:
    """Kinetic's example: up to three deferred work orders, a junction waits for those made."""
    nodes: dict[str, object] = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Split"}]},
        "Split": {
            **SPLIT,
            "connectors": [
                {"to": order, "condition": _when(order)} for order in ("Office", "Laptop", "Phone")
            ],
        },
        "Done": {"handler": "system_junction_v1", "connectors": [{"to": "Notify"}]},
        "Notify": {"handler": "utilities_echo_v1", "parameters": {"input": "all orders done"}},
    }
    for order in ("Office", "Laptop", "Phone"):
        nodes[order] = {
            "handler": "utilities_defer_v1",
            "defers": True,
            "connectors": [{"to": "Done"}],
        }
    return small_tree(name, nodes)


def _load(tree: dict[str, object]) -> Tree:
    return load_tree_data(tree, registry=HandlerRegistry(), expressions=Expressions())


def _names(engine: Engine, run_id: int) -> list[str]:
    return [t.name for t in engine.get_run(run_id).tasks]


# -- regions, computed at load -------------------------------------------------------------------


def test_region_is_the_nearest_common_ancestor_and_the_nodes_between() -> None:
    tree = _load(_work_orders())
    region = tree.junctions["Done"]
    assert region.parent == "Split"
    assert region.nodes == {"Split", "Office", "Laptop", "Phone"}
    assert tree.nodes["Office"].junctions == ("Done",)
    assert tree.nodes["Start"].junctions == ()
    assert tree.nodes["Notify"].junctions == ()


def test_region_of_a_junction_behind_a_chain_reaches_back_to_the_split() -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "A"}, {"to": "B"}]},
        "A": {**SPLIT, "connectors": [{"to": "A2"}]},
        "A2": {**SPLIT, "connectors": [{"to": "J"}]},
        "B": {**SPLIT, "connectors": [{"to": "J"}, {"to": "Elsewhere"}]},
        "Elsewhere": SPLIT,
        "J": {"handler": "system_junction_v1"},
    }
    tree = _load(small_tree("Chain", nodes))
    assert tree.junctions["J"].parent == "Start"
    assert tree.junctions["J"].nodes == {"Start", "A", "A2", "B"}


def test_junction_without_incoming_connectors_is_refused_at_load() -> None:
    nodes = {"Start": {"handler": "system_start_v1"}, "J": {"handler": "system_junction_v1"}}
    with pytest.raises(TreeError) as refused:
        _load(small_tree("Lonely", nodes))
    [problem] = refused.value.problems
    assert problem.node == "J"
    assert problem.message == "a junction needs at least one incoming connector; it has none"


def test_junction_takes_no_parameters() -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "J"}]},
        "J": {"handler": "system_junction_v1", "parameters": {"type": "All"}},
    }
    with pytest.raises(TreeError, match="parameter 'type' is not declared"):
        _load(small_tree("Params", nodes))


# -- firing ----------------------------------------------------------------------------------------


def test_junction_waits_for_every_deferred_branch_and_fires_once(engine: Engine) -> None:
    engine.load_tree(_work_orders())
    run_id = start_small(engine, "Work Orders", results=_inputs(Office="yes", Laptop="yes"))
    run = engine.get_run(run_id)
    assert "Done" not in _names(engine, run_id)  # no branch has reached it yet
    assert run.status is RunStatus.STARTED
    for order in ("Laptop", "Office"):
        assert "Notify" not in _names(engine, run_id)
        engine.create_deferred(token=engine.get_run(run_id).task(order).token)
        engine.run_until_idle()
    run = engine.get_run(run_id)
    assert run.task("Done").status is TaskStatus.CLOSED
    assert _names(engine, run_id).count("Notify") == 1
    assert run.task("Notify").results == {"output": "all orders done"}
    assert "Phone" not in _names(engine, run_id)
    assert run.status is RunStatus.COMPLETED


def test_junction_behind_a_false_connector_counts_that_branch_finished(engine: Engine) -> None:
    engine.load_tree(_work_orders())
    run_id = start_small(engine, "Work Orders", results=_inputs(Phone="yes"))
    assert "Done" not in _names(engine, run_id)
    engine.create_deferred(token=engine.get_run(run_id).task("Phone").token)
    engine.run_until_idle()
    run = engine.get_run(run_id)
    assert _names(engine, run_id) == ["Start", "Split", "Phone", "Done", "Notify"]
    assert run.task("Done").status is TaskStatus.CLOSED
    assert run.status is RunStatus.COMPLETED


def test_junction_fires_when_every_branch_into_it_was_false(engine: Engine) -> None:
    engine.load_tree(_work_orders())
    run_id = start_small(engine, "Work Orders", results=_inputs())
    run = engine.get_run(run_id)
    assert _names(engine, run_id) == ["Start", "Split", "Done", "Notify"]
    assert run.task("Done").status is TaskStatus.CLOSED
    assert run.status is RunStatus.COMPLETED


def test_junction_never_fires_when_its_parent_was_not_reached(engine: Engine) -> None:
    tree = _work_orders("Gated")
    tree["nodes"]["Start"]["connectors"] = [{"to": "Split", "condition": _when("Go")}]  # type: ignore[index]
    engine.load_tree(tree)
    run_id = start_small(engine, "Gated", results=_inputs(Go="no"))
    assert _names(engine, run_id) == ["Start"]
    assert engine.get_run(run_id).status is RunStatus.COMPLETED


def _deferred_then_false() -> dict[str, object]:
    """A deferred task, then a false connector: the branch ends only when the task completes."""
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Approve"}, {"to": "Log"}]},
        "Approve": {
            "handler": "utilities_defer_v1",
            "defers": True,
            "connectors": [{"to": "Escalate"}],
        },
        "Escalate": {
            **SPLIT,
            "connectors": [{"to": "J", "condition": "results['Approve']['Status'] == 'Escalated'"}],
        },
        "Log": {**SPLIT, "connectors": [{"to": "J"}]},
        "J": {"handler": "system_junction_v1", "connectors": [{"to": "After"}]},
        "After": SPLIT,
    }
    return small_tree("Deferred Then False", nodes)


def test_deferral_completed_in_a_later_trigger_releases_the_junction(engine: Engine) -> None:
    engine.load_tree(_deferred_then_false())
    run_id = start_small(engine, "Deferred Then False")
    assert engine.get_run(run_id).task("J").status is TaskStatus.NEW
    assert "After" not in _names(engine, run_id)
    token = engine.get_run(run_id).task("Approve").token
    engine.create_deferred(
        token=token, results='<results><result name="Status">Approved</result></results>'
    )
    engine.run_until_idle()
    run = engine.get_run(run_id)
    assert _names(engine, run_id) == ["Start", "Approve", "Log", "J", "Escalate", "After"]
    assert run.task("J").status is TaskStatus.CLOSED
    assert run.status is RunStatus.COMPLETED


def test_update_of_a_deferred_task_keeps_the_junction_waiting(engine: Engine) -> None:
    engine.load_tree(_work_orders())
    run_id = start_small(engine, "Work Orders", results=_inputs(Office="yes"))
    token = engine.get_run(run_id).task("Office").token
    engine.create_deferred(token=token, action="Update")
    engine.run_until_idle()
    assert "Done" not in _names(engine, run_id)
    engine.create_deferred(token=token, action="Complete")
    engine.run_until_idle()
    assert engine.get_run(run_id).task("Done").status is TaskStatus.CLOSED


def test_failed_branch_keeps_the_junction_waiting_and_the_run_fails(engine: Engine) -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Broken"}, {"to": "Fine"}]},
        "Broken": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ results['No' ~ 'pe']['x'] }}"},
            "connectors": [{"to": "J"}],
        },
        "Fine": {"handler": "utilities_echo_v1", "parameters": {"input": "ok"}},
        "J": {"handler": "system_junction_v1", "connectors": [{"to": "After"}]},
        "After": SPLIT,
    }
    nodes["Fine"]["connectors"] = [{"to": "J"}]
    engine.load_tree(small_tree("Broken Branch", nodes))
    run = engine.get_run(start_small(engine, "Broken Branch"))
    assert run.task("Broken").status is TaskStatus.FAILED
    assert run.task("J").status is TaskStatus.NEW
    assert "After" not in [t.name for t in run.tasks]
    [error] = run.errors
    assert (error.type, error.node) == (ErrorType.NODE_PARAMETER.value, "Broken")
    assert run.status is RunStatus.FAILED


def test_connector_error_in_the_region_keeps_the_junction_waiting(engine: Engine) -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "A"}, {"to": "B"}]},
        "A": {**SPLIT, "connectors": [{"to": "J", "condition": "inputs['Absent'] == 'x'"}]},
        "B": {**SPLIT, "connectors": [{"to": "J"}]},
        "J": {"handler": "system_junction_v1", "connectors": [{"to": "After"}]},
        "After": SPLIT,
    }
    engine.load_tree(small_tree("Bad Connector", nodes))
    run = engine.get_run(start_small(engine, "Bad Connector"))
    assert [e.type for e in run.errors] == [ErrorType.CONNECTOR.value]
    assert run.task("J").status is TaskStatus.NEW
    assert run.status is RunStatus.FAILED


def test_failure_outside_the_region_does_not_hold_the_junction(engine: Engine) -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Split"}, {"to": "Side"}]},
        "Side": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ inputs['No'] }}"}},
        "Split": {**SPLIT, "connectors": [{"to": "A"}, {"to": "B"}]},
        "A": {**SPLIT, "connectors": [{"to": "J"}]},
        "B": {**SPLIT, "connectors": [{"to": "J"}]},
        "J": {"handler": "system_junction_v1", "connectors": [{"to": "After"}]},
        "After": SPLIT,
    }
    engine.load_tree(small_tree("Side Failure", nodes))
    run = engine.get_run(start_small(engine, "Side Failure"))
    assert run.task("Side").status is TaskStatus.FAILED
    assert run.task("J").status is TaskStatus.CLOSED
    assert [t.name for t in run.tasks].count("After") == 1
    assert run.status is RunStatus.FAILED


def test_inner_junction_fires_and_its_branch_runs_before_the_outer_one(engine: Engine) -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Outer Split"}]},
        "Outer Split": {**SPLIT, "connectors": [{"to": "Inner Split"}, {"to": "Side"}]},
        "Inner Split": {**SPLIT, "connectors": [{"to": "A"}, {"to": "B"}]},
        "A": {"handler": "utilities_defer_v1", "defers": True, "connectors": [{"to": "Inner"}]},
        "B": {**SPLIT, "connectors": [{"to": "Inner"}]},
        "Inner": {"handler": "system_junction_v1", "connectors": [{"to": "After Inner"}]},
        "After Inner": {**SPLIT, "connectors": [{"to": "Outer"}]},
        "Side": {**SPLIT, "connectors": [{"to": "Outer"}]},
        "Outer": {"handler": "system_junction_v1", "connectors": [{"to": "End"}]},
        "End": SPLIT,
    }
    engine.load_tree(small_tree("Nested", nodes))
    run_id = start_small(engine, "Nested")
    run = engine.get_run(run_id)
    assert (run.task("Inner").status, run.task("Outer").status) == (TaskStatus.NEW,) * 2
    engine.create_deferred(token=run.task("A").token)
    engine.run_until_idle()
    assert _names(engine, run_id) == [
        *("Start", "Outer Split", "Inner Split", "A", "B", "Inner", "Side", "Outer"),
        *("After Inner", "End"),  # the inner junction's branch ran before the outer fired
    ]
    run = engine.get_run(run_id)
    assert (run.task("Inner").status, run.task("Outer").status) == (TaskStatus.CLOSED,) * 2
    assert engine.get_run(run_id).status is RunStatus.COMPLETED


def test_junction_task_row_records_the_branches_that_arrived(engine: Engine) -> None:
    engine.load_tree(_work_orders())
    run_id = start_small(engine, "Work Orders", results=_inputs(Office="yes", Phone="yes"))
    for order in ("Phone", "Office"):
        engine.create_deferred(token=engine.get_run(run_id).task(order).token)
    engine.run_until_idle()
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT status, arrived FROM tasks WHERE run_id = :r AND node = 'Done'"),
            {"r": run_id},
        ).all()
    assert len(rows) == 1
    status, arrived = rows[0]
    assert status == "Closed"
    assert sorted(arrived if isinstance(arrived, list) else json.loads(arrived)) == [
        "Office",
        "Phone",
    ]


def test_example_tree_provision_equipment(engine: Engine) -> None:
    tree = {
        "source_name": "Kinetic Request",
        "source_group": "IT > Equipment",
        "tree_name": "Provision Equipment",
    }
    inputs = '<results><result name="Employee">Ada</result><result name="Office">Yes</result>'
    inputs += '<result name="Laptop">Yes</result><result name="Phone">No</result></results>'
    trigger = engine.create_start(**tree, source_id="EQ-1", results=inputs)
    engine.run_until_idle()
    run = engine.get_run(trigger.run_id)
    assert sorted(run.open_tokens) == ["Laptop Work Order", "Office Work Order"]
    for token in run.open_tokens.values():
        assert "Notify Employee" not in _names(engine, run.id)
        engine.create_deferred(token=token)
        engine.run_until_idle()
    run = engine.get_run(run.id)
    assert run.task("Notify Employee").results == {"output": "equipment for Ada is ready"}
    assert "Phone Work Order" not in _names(engine, run.id)
    assert run.status is RunStatus.COMPLETED
