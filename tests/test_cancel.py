"""Cancelling a run: a durable Cancel trigger; tokens, waits and retries stop; children too."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from engine import (
    Engine,
    Handler,
    HandlerContext,
    RunCancelled,
    RunNotFound,
    RunNotOpen,
    RunStatus,
    TaskStatus,
    TokenNotFound,
    TriggerAction,
    TriggerStatus,
    hookimpl,
)

from .support import APPROVED, FixedClock, race, small_tree, stalling_routine, start_small

T0 = 1_800_000_000.0


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        self.calls += 1
        raise ConnectionError("down")

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_failing_v1", self.execute)]


def _stalled_tree() -> dict[str, Any]:
    """Start -> Approve (deferred) and Start -> Pause (a one-hour wait) and Start -> Call
    (always failing, retried every minute)."""
    return small_tree(
        "Stalled",
        {
            "Start": {
                "handler": "system_start_v1",
                "connectors": [{"to": "Approve"}, {"to": "Pause"}, {"to": "Call"}],
            },
            "Approve": {
                "handler": "utilities_defer_v1",
                "defers": True,
                "connectors": [{"to": "After Approve"}],
            },
            "After Approve": {"handler": "utilities_echo_v1", "parameters": {"input": "on"}},
            "Pause": {
                "handler": "system_wait_v1",
                "parameters": {"Time to wait": "1", "Time unit": "Hour"},
                "connectors": [{"to": "After Pause"}],
            },
            "After Pause": {"handler": "utilities_echo_v1", "parameters": {"input": "on"}},
            "Call": {
                "handler": "tests_failing_v1",
                "retry": {"attempts": 5, "backoff": {"initial": "1m", "factor": 1}},
            },
        },
    )


def _caller_tree() -> list[dict[str, object]]:
    """A routine that stalls on a deferral, and a tree that calls it."""
    return stalling_routine("routine_stall_v1", "Stall", "Call Stall")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def failing() -> Failing:
    return Failing()


@pytest.fixture
def eng(database_url: str, clock: FixedClock, failing: Failing) -> Iterator[Engine]:
    with Engine(database_url, plugins=[failing], clock=clock) as engine:
        engine.load_tree(_stalled_tree())
        yield engine


def _triggers(engine: Engine, run_id: int) -> list[tuple[str, str]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT action, status FROM triggers WHERE run_id = :r ORDER BY id"),
            {"r": run_id},
        )
        return [(row[0], row[1]) for row in rows]


def test_cancel_stops_tokens_waits_and_retries(
    eng: Engine, clock: FixedClock, failing: Failing
) -> None:
    run_id = start_small(eng, "Stalled")
    run = eng.get_run(run_id)
    token = run.open_tokens["Approve"]
    assert run.task("Call").status is TaskStatus.RETRYING
    assert failing.calls == 1

    trigger = eng.cancel_run(run_id, "the customer withdrew", "ops@example.com")
    assert (trigger.action, trigger.status) == (TriggerAction.CANCEL, TriggerStatus.NEW)
    assert (trigger.message, trigger.requested_by) == ("the customer withdrew", "ops@example.com")
    with pytest.raises(RunCancelled, match=f"run {run_id} was cancelled") as refused:
        eng.create_deferred(token=token, results=APPROVED)
    assert isinstance(refused.value, TokenNotFound)  # what a seed client matches on

    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.CANCELLED
    assert sorted(_triggers(eng, run_id)) == [
        ("Cancel", "Closed"),
        ("Complete", "Cancelled"),  # the wait's timer
        ("Retry", "Cancelled"),
        ("Root", "Closed"),
    ]
    clock.now = T0 + 7200  # the wait and every retry would be due by now
    assert eng.run_until_idle() == 0
    run = eng.get_run(run_id)
    assert failing.calls == 1
    assert {t.name for t in run.tasks} == {"Start", "Approve", "Pause", "Call"}
    assert run.status is RunStatus.CANCELLED


def test_cancel_is_once_and_refused_for_a_completed_or_unknown_run(eng: Engine) -> None:
    run_id = start_small(eng, "Stalled")
    first = eng.cancel_run(run_id, "once")
    assert eng.cancel_run(run_id, "twice").id == first.id
    eng.run_until_idle()
    assert eng.cancel_run(run_id).id == first.id  # Cancelled: the same answer

    eng.load_tree(
        small_tree("Quick", {"Start": {"handler": "system_start_v1"}}),
    )
    done = start_small(eng, "Quick")
    with pytest.raises(RunNotOpen, match=f"Run {done} is Completed: Cancel needs a run"):
        eng.cancel_run(done)
    with pytest.raises(RunNotFound):
        eng.cancel_run(999_999)
    assert _triggers(eng, done) == [("Root", "Closed")]


def test_a_failed_run_can_be_cancelled_and_its_errors_no_longer_resolved(eng: Engine) -> None:
    eng.load_tree(
        small_tree(
            "Broken",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "X"}]},
                "X": {"handler": "tests_failing_v1"},
            },
        ),
    )
    run_id = start_small(eng, "Broken")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.FAILED
    eng.cancel_run(run_id, "giving up")
    with pytest.raises(RunNotOpen, match=f"Run {run_id} is Cancelled: Resolving an error needs"):
        eng.resolve_error(run.errors[0].id, "Retry Task")
    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.CANCELLED
    assert eng.get_run(run_id).errors[0].resolution_action is None  # nothing was written


def test_cancel_reaches_the_routine_runs_under_the_run(eng: Engine) -> None:
    for tree in _caller_tree():
        eng.load_tree(tree)
    run_id = start_small(eng, "Caller")
    eng.run_until_idle()
    (child,) = eng.get_run(run_id).children
    child_token = eng.get_run(child.run_id).open_tokens["Hold"]

    eng.cancel_run(run_id, "stop it all", "admin")
    with pytest.raises(RunCancelled, match=f"run {child.run_id} was cancelled"):
        eng.create_deferred(token=child_token)
    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.CANCELLED
    assert eng.get_run(child.run_id).status is RunStatus.CANCELLED
    cancel = eng.get_trigger(
        next(t.id for t in _trigger_records(eng, child.run_id) if t.action is TriggerAction.CANCEL)
    )
    assert (cancel.message, cancel.requested_by) == ("stop it all", "admin")


def _trigger_records(engine: Engine, run_id: int) -> list[Any]:
    with engine.database.read() as connection:
        ids = connection.execute(
            sa.text("SELECT id FROM triggers WHERE run_id = :r ORDER BY id"), {"r": run_id}
        ).scalars()
        return [engine.get_trigger(i) for i in list(ids)]


def _complete_and_cancel(engine: Engine, run_id: int, token: str) -> list[object]:
    """createDeferred and cancel_run on two threads released together."""
    calls = iter(
        [
            lambda: engine.create_deferred(token=token, results=APPROVED),
            lambda: engine.cancel_run(run_id, "race"),
        ]
    )
    return race(2, lambda: next(calls)())


def test_a_create_deferred_racing_a_cancel_is_either_refused_or_closed_unprocessed(
    eng: Engine,
) -> None:
    """Real threads: a Complete and a cancel of the same run, released together, many times."""
    outcomes = set()
    for _ in range(8):
        run_id = start_small(eng, "Stalled")
        token = eng.get_run(run_id).open_tokens["Approve"]

        results = _complete_and_cancel(eng, run_id, token)
        completed = [
            r for r in results if not isinstance(r, BaseException) and r.action == "Complete"
        ]
        refused = [r for r in results if isinstance(r, RunCancelled)]
        assert len(completed) + len(refused) == 1, results
        assert not [r for r in results if isinstance(r, BaseException) and r not in refused]
        eng.run_until_idle()
        run = eng.get_run(run_id)
        assert run.status is RunStatus.CANCELLED
        assert "After Approve" not in {t.name for t in run.tasks}  # the Complete never ran
        if completed:  # accepted before the cancel, closed by it unprocessed
            assert eng.get_trigger(completed[0].id).status is TriggerStatus.CANCELLED
        outcomes.add("accepted" if completed else "refused")
        with eng.database.read() as connection:
            still_open = connection.execute(
                sa.text("SELECT count(*) FROM triggers WHERE run_id = :r AND status = 'New'"),
                {"r": run_id},
            ).scalar_one()
        assert still_open == 0
    assert outcomes  # at least one outcome was seen; which depends on the scheduler


def test_an_accepted_cancel_survives_the_engine_that_accepted_it(
    database_url: str, clock: FixedClock, failing: Failing
) -> None:
    """Accepted by one engine, which stops before processing it; another engine cancels the run."""
    with Engine(database_url, plugins=[failing], clock=clock) as first:
        first.load_tree(_stalled_tree())
        run_id = start_small(first, "Stalled")
        first.cancel_run(run_id, "durable", "ops")
        assert first.get_run(run_id).status is RunStatus.STARTED
    with Engine(database_url, plugins=[failing], clock=clock) as second:
        second.load_tree(_stalled_tree())
        second.run_until_idle()
        assert second.get_run(run_id).status is RunStatus.CANCELLED
        assert ("Cancel", "Closed") in _triggers(second, run_id)
