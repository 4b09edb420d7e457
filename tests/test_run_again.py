"""Run Again (same or edited inputs, same or current version) and manual triggers at a node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine import (
    BadRequest,
    BadResults,
    Engine,
    RunNotFound,
    RunNotOpen,
    RunStatus,
    TaskStatus,
    TriggerAction,
)

from .support import ExplodePlugin, approval_tree, small_tree, start_small

NAME = '<results><result name="Name">Ada</result><result name="Plan">Gold</result></results>'


def _greeting(text: str = "Hello") -> dict[str, Any]:
    return small_tree(
        "Greeting",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Greet"}]},
            "Greet": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": text + " {{ inputs['Name'] }} ({{ inputs['Plan'] }})"},
            },
        },
    )


def _broken() -> dict[str, Any]:
    """Start -> Fetch (always raises) -> Use, which reads Fetch's answer."""
    return small_tree(
        "Broken",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Fetch"}]},
            "Fetch": {"handler": "tests_explode_v1", "connectors": [{"to": "Use"}]},
            "Use": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "got {{ results['Fetch']['answer'] }}"},
            },
        },
    )


@pytest.fixture
def eng(database_url: str) -> Iterator[Engine]:
    with Engine(database_url, plugins=[ExplodePlugin()]) as engine:
        engine.load_tree(_greeting())
        engine.load_tree(approval_tree())
        engine.load_tree(_broken())
        yield engine


def test_run_again_with_the_same_and_with_edited_inputs(eng: Engine) -> None:
    first = start_small(eng, "Greeting", results=NAME, source_id="order-7")
    same = eng.run_again(first, created_by="u-1")
    edited = eng.run_again(first, inputs={"Plan": "Silver"})
    assert same.action is TriggerAction.ROOT
    assert same.message == f"Run again of run {first}"
    eng.run_until_idle()

    again = eng.get_run(same.run_id)
    assert (again.again_of, again.source_id, again.status) == (
        first,
        "order-7",
        RunStatus.COMPLETED,
    )
    assert again.inputs == {"Name": "Ada", "Plan": "Gold"}
    assert again.task("Greet").results == {"output": "Hello Ada (Gold)"}
    changed = eng.get_run(edited.run_id)
    assert changed.inputs == {"Name": "Ada", "Plan": "Silver"}
    assert changed.task("Greet").results == {"output": "Hello Ada (Silver)"}
    assert eng.get_run(first).again_of is None
    with eng.database.read() as connection:
        creator = connection.execute(
            sa.text("SELECT user_id FROM run_creators WHERE run_id = :r"), {"r": same.run_id}
        ).scalar()
    assert creator == "u-1"


def test_run_again_on_the_same_or_the_current_version(eng: Engine) -> None:
    first = start_small(eng, "Greeting", results=NAME)
    eng.load_tree(_greeting("Welcome"))  # version 2
    same = eng.run_again(first)
    current = eng.run_again(first, version="current")
    eng.run_until_idle()
    assert eng.get_run(same.run_id).tree_version == 1
    assert eng.get_run(same.run_id).task("Greet").results["output"].startswith("Hello")
    assert eng.get_run(current.run_id).tree_version == 2
    assert eng.get_run(current.run_id).task("Greet").results["output"].startswith("Welcome")


def test_run_again_refuses_bad_requests_and_writes_nothing(eng: Engine) -> None:
    first = start_small(eng, "Greeting", results=NAME)
    with eng.database.read() as connection:
        before = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    with pytest.raises(BadRequest, match="Invalid version: 'newest' is not one of same, current"):
        eng.run_again(first, version="newest")
    with pytest.raises(BadRequest, match="Invalid inputs\\['Plan'\\]: expected a string"):
        eng.run_again(first, inputs={"Plan": 3})  # type: ignore[dict-item]
    with pytest.raises(RunNotFound):
        eng.run_again(424242)
    with eng.database.read() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == before


def test_a_manual_trigger_completes_a_deferred_task_with_the_given_results(eng: Engine) -> None:
    run_id = start_small(eng, "Approval", results=NAME)
    token = eng.get_run(run_id).open_tokens["Approve"]
    approved = '<results><result name="Status">Approved by hand</result></results>'
    trigger = eng.manual_trigger(
        run_id, "Approve", results=approved, reason="the mail never came", by="admin"
    )
    assert (trigger.action, trigger.node) == (TriggerAction.MANUAL, "Approve")
    assert (trigger.requested_by, trigger.message) == ("admin", "the mail never came")
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Approve").status is TaskStatus.CLOSED
    assert run.task("Notify").results == {"output": "Ada: Approved by hand"}
    assert token not in eng.get_run(run_id).open_tokens.values()


def test_a_manual_trigger_resumes_a_failed_run_after_the_failed_node(eng: Engine) -> None:
    run_id = start_small(eng, "Broken")
    assert eng.get_run(run_id).status is RunStatus.FAILED
    answer = '<results><result name="answer">42</result></results>'
    eng.manual_trigger(run_id, "Fetch", results=answer, reason="fetched by hand", by="admin")
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.task("Use").results == {"output": "got 42"}
    assert [t.status for t in run.tasks if t.name == "Fetch"] == [
        TaskStatus.FAILED,
        TaskStatus.CLOSED,
    ]
    assert run.status is RunStatus.FAILED  # its error is still active until resolved
    eng.resolve_error(run.errors[0].id, "Do Nothing")
    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.COMPLETED


def test_a_manual_trigger_is_refused_with_the_reason_and_writes_nothing(eng: Engine) -> None:
    run_id = start_small(eng, "Approval")
    with pytest.raises(BadRequest, match="'Nowhere' is not a node of the run's tree"):
        eng.manual_trigger(run_id, "Nowhere", reason="r", by="admin")
    with pytest.raises(BadRequest, match="Invalid reason: must not be empty"):
        eng.manual_trigger(run_id, "Approve", reason=" ", by="admin")
    with pytest.raises(BadResults):
        eng.manual_trigger(run_id, "Approve", results="<results>", reason="r", by="admin")
    done = start_small(eng, "Greeting", results=NAME)
    with pytest.raises(RunNotOpen, match=f"Run {done} is Completed"):
        eng.manual_trigger(done, "Greet", reason="r", by="admin")
    with eng.database.read() as connection:
        manual = connection.execute(
            sa.text("SELECT count(*) FROM triggers WHERE action = 'Manual'")
        ).scalar_one()
    assert manual == 0
