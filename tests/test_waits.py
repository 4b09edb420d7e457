"""Waits (system_wait_v1): a timer trigger written with the step, moved by an injected clock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import sqlalchemy as sa

from engine import Engine, ErrorType, Handler, RunStatus, TaskStatus, TreeError, hookimpl
from engine.handlers.handler import HandlerContext

from .conftest import TREES
from .support import small_tree, start_small

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


class Clock:
    """The engine's clock, moved by the test: no test sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _wait_tree(amount: str = "2", unit: str = "Hour", name: str = "Reminder") -> dict[str, object]:
    return small_tree(
        name,
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Pause"}]},
            "Pause": {
                "handler": "system_wait_v1",
                "parameters": {"Time to wait": amount, "Time unit": unit},
                "connectors": [
                    {"to": "Waiting", "type": "Create"},
                    {"to": "Remind"},
                ],
            },
            "Waiting": {"handler": "utilities_echo_v1", "parameters": {"input": "paused"}},
            "Remind": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "reminder after {{ results['Pause']['due_at'] }}"},
            },
        },
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def waiting(database_url: str, clock: Clock) -> Iterator[Engine]:
    with Engine(database_url, clock=clock) as engine:
        engine.load_tree(_wait_tree())
        yield engine


def _timers(engine: Engine, run_id: int) -> list[Mapping[str, object]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT id, action, status, token, due_at, error, idempotency_key FROM triggers"
                " WHERE run_id = :r AND action = 'Complete' AND token IS NULL ORDER BY id"
            ),
            {"r": run_id},
        )
        return [dict(row) for row in rows.mappings()]


def _names(engine: Engine, run_id: int) -> list[str]:
    return [t.name for t in engine.get_run(run_id).tasks]


def test_wait_defers_and_its_timer_completes_it_when_due(waiting: Engine, clock: Clock) -> None:
    run_id = start_small(waiting, "Reminder")
    run = waiting.get_run(run_id)
    pause = run.task("Pause")
    assert pause.status is TaskStatus.DEFERRED
    assert len(pause.token or "") == 40
    assert pause.results == {"due_at": "2027-01-15T10:00:00+00:00"}
    assert _names(waiting, run_id) == ["Start", "Pause", "Waiting"]
    [timer] = _timers(waiting, run_id)
    assert (timer["status"], timer["due_at"]) == ("New", T0 + 2 * 3600)
    assert timer["idempotency_key"] == f"wait:{pause.id}"
    assert run.status is RunStatus.STARTED

    clock.now = T0 + 2 * 3600 - 1
    assert waiting.run_until_idle() == 0  # not due yet: not claimed
    clock.now = T0 + 2 * 3600
    assert waiting.run_until_idle() == 1
    run = waiting.get_run(run_id)
    assert run.task("Pause").status is TaskStatus.CLOSED
    assert run.task("Remind").results == {"output": "reminder after 2027-01-15T10:00:00+00:00"}
    assert _timers(waiting, run_id)[0]["status"] == "Closed"
    assert run.status is RunStatus.COMPLETED
    assert run.errors == ()


@pytest.mark.parametrize(
    ("amount", "unit", "seconds"),
    [
        ("0", "Second", 0),
        ("45", "Second", 45),
        ("1.5", "Minute", 90),
        ("3", "Hour", 10_800),
        ("2", "Day", 172_800),
        ("1", "Week", 604_800),
    ],
    ids=["zero", "seconds", "fractional-minutes", "hours", "days", "week"],
)
def test_wait_units(database_url: str, clock: Clock, amount: str, unit: str, seconds: int) -> None:
    with Engine(database_url, clock=clock) as engine:
        engine.load_tree(_wait_tree(amount, unit))
        run_id = start_small(engine, "Reminder")
        [timer] = _timers(engine, run_id)
        assert timer["due_at"] == T0 + seconds
        clock.now = T0 + seconds
        engine.run_until_idle()
        assert engine.get_run(run_id).status is RunStatus.COMPLETED


def test_complete_before_the_time_wins_and_closes_the_timer(waiting: Engine, clock: Clock) -> None:
    run_id = start_small(waiting, "Reminder")
    token = waiting.get_run(run_id).task("Pause").token
    clock.now = T0 + 60
    waiting.create_deferred(
        token=token, results='<results><result name="By">Ann</result></results>'
    )
    assert waiting.run_until_idle() == 1
    run = waiting.get_run(run_id)
    assert run.task("Pause").results["By"] == "Ann"
    assert _names(waiting, run_id) == ["Start", "Pause", "Waiting", "Remind"]
    [timer] = _timers(waiting, run_id)
    assert (timer["status"], timer["error"]) == ("Closed", None)
    assert run.status is RunStatus.COMPLETED  # not left Started until the timer is due

    clock.now = T0 + 3 * 3600
    assert waiting.run_until_idle() == 0
    assert _names(waiting, run_id) == ["Start", "Pause", "Waiting", "Remind"]
    assert waiting.get_run(run_id).errors == ()


def test_timer_due_with_a_complete_queued_closes_without_effect(
    waiting: Engine, clock: Clock
) -> None:
    run_id = start_small(waiting, "Reminder")
    token = waiting.get_run(run_id).task("Pause").token
    clock.now = T0 + 5 * 3600  # the timer is due, and a Complete arrives before it is processed
    waiting.create_deferred(token=token, message="by hand")
    assert waiting.run_until_idle() == 2
    run = waiting.get_run(run_id)
    assert _names(waiting, run_id).count("Remind") == 1
    [timer] = _timers(waiting, run_id)
    assert (timer["status"], timer["error"]) == ("Closed", None)
    assert run.errors == ()
    assert run.status is RunStatus.COMPLETED


def test_update_keeps_the_wait_deferred_and_the_timer_still_completes_it(
    waiting: Engine, clock: Clock
) -> None:
    run_id = start_small(waiting, "Reminder")
    token = waiting.get_run(run_id).task("Pause").token
    waiting.create_deferred(token=token, action="Update")
    waiting.run_until_idle()
    assert waiting.get_run(run_id).task("Pause").status is TaskStatus.DEFERRED
    clock.now = T0 + 2 * 3600
    waiting.run_until_idle()
    assert waiting.get_run(run_id).status is RunStatus.COMPLETED


def test_wait_survives_a_restart(database_url: str, clock: Clock) -> None:
    with Engine(database_url, clock=clock) as first:
        first.load_tree(_wait_tree("30", "Minute"))
        run_id = start_small(first, "Reminder")
    later = Clock(T0 + 10 * 60)
    with Engine(database_url, clock=later) as second:  # loads no tree: runs the stored version
        assert second.run_until_idle() == 0
        assert second.get_run(run_id).task("Pause").status is TaskStatus.DEFERRED
    later.now = T0 + 31 * 60
    with Engine(database_url, clock=later) as third:
        assert third.run_until_idle() == 1
        run = third.get_run(run_id)
        assert run.task("Remind").results == {"output": "reminder after 2027-01-15T08:30:00+00:00"}
        assert run.status is RunStatus.COMPLETED


def test_timer_losing_to_a_complete_accepted_meanwhile_commits_nothing(
    database_url: str, clock: Clock
) -> None:
    """A Complete accepted while the timer's step runs wins; the timer step is rolled back."""
    tokens: list[str] = []

    def complete_the_wait(context: HandlerContext) -> dict[str, str]:
        receipt = context.triggers.create_deferred(
            token=tokens[0], action="Complete", results=None, message=None, idempotency_key="k"
        )
        return {"trigger_id": str(receipt.trigger_id)}

    class Plugin:
        @hookimpl
        def treeflow_node_handlers(self) -> list[Handler]:
            return [Handler("tests_complete_the_wait_v1", complete_the_wait)]

    tree = _wait_tree("1", "Minute", name="Race")
    tree["nodes"]["Remind"] = {"handler": "tests_complete_the_wait_v1"}  # type: ignore[index]
    with Engine(database_url, clock=clock, plugins=[Plugin()], lease_seconds=10) as engine:
        engine.load_tree(tree)
        run_id = start_small(engine, "Race")
        tokens.append(engine.get_run(run_id).task("Pause").token or "")
        clock.now = T0 + 60
        assert engine.run_until_idle() == 0  # the timer's commit lost to the Complete
        assert engine.get_run(run_id).task("Pause").status is TaskStatus.DEFERRED
        assert "Remind" not in _names(engine, run_id)
        clock.now = T0 + 60 + 11  # the lease ran out: the timer is taken up again
        engine.run_until_idle()
        run = engine.get_run(run_id)
        assert _names(engine, run_id).count("Remind") == 1
        assert run.task("Pause").status is TaskStatus.CLOSED
        [timer] = _timers(engine, run_id)
        assert (timer["status"], timer["error"]) == ("Closed", None)
        assert run.errors == ()
        assert run.status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        ("soon", "Minute", "Wait 'Pause': 'Time to wait' is 'soon', not a number of zero or more"),
        ("-5", "Minute", "Wait 'Pause': 'Time to wait' is '-5', not a number of zero or more"),
        ("1e3", "Minute", "Wait 'Pause': 'Time to wait' is '1e3', not a number of zero or more"),
        ("", "Hour", "Wait 'Pause': 'Time to wait' is '', not a number of zero or more"),
        (
            "5",
            "Fortnight",
            "Wait 'Pause': 'Time unit' is 'Fortnight', not one of Second, Minute, Hour, Day, Week",
        ),
        ("5", "minute", "Wait 'Pause': 'Time unit' is 'minute', not one of"),
    ],
    ids=["words", "negative", "exponent", "empty", "unknown-unit", "lower-case-unit"],
)
def test_bad_wait_parameters_are_node_parameter_errors(
    database_url: str, clock: Clock, amount: str, unit: str, message: str
) -> None:
    tree = _wait_tree("{{ inputs['Amount'] }}", "{{ inputs['Unit'] }}")
    with Engine(database_url, clock=clock) as engine:
        engine.load_tree(tree)
        inputs = f'<results><result name="Amount">{amount}</result>'
        inputs += f'<result name="Unit">{unit}</result></results>'
        run = engine.get_run(start_small(engine, "Reminder", results=inputs))
        assert run.task("Pause").status is TaskStatus.FAILED
        assert _names(engine, run.id) == ["Start", "Pause"]
        [error] = run.errors
        assert error.type == ErrorType.NODE_PARAMETER.value
        assert error.summary.startswith(message)
        assert _timers(engine, run.id) == []
        assert run.status is RunStatus.FAILED


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        ("ten", "Minute", "'Time to wait' is 'ten', not a number of zero or more"),
        ("-1", "Minute", "'Time to wait' is '-1', not a number of zero or more"),
        ("1", "Fortnight", "parameter 'Time unit' is 'Fortnight'; it must be one of Second"),
    ],
    ids=["words", "negative", "unknown-unit"],
)
def test_bad_constant_wait_parameters_are_refused_at_load(
    amount: str, unit: str, message: str
) -> None:
    with Engine() as engine, pytest.raises(TreeError) as refused:
        engine.load_tree(_wait_tree(amount, unit))
    [problem] = refused.value.problems
    assert problem.node == "Pause"
    assert message in problem.message


def test_wait_node_cannot_be_told_not_to_defer() -> None:
    tree = _wait_tree()
    tree["nodes"]["Pause"]["defers"] = False  # type: ignore[index]
    with Engine() as engine, pytest.raises(TreeError, match="a wait node always defers"):
        engine.load_tree(tree)


def test_example_tree_cooling_off_period(database_url: str, clock: Clock) -> None:
    with Engine(database_url, trees=TREES, clock=clock) as engine:
        trigger = engine.create_start(
            source_name="Kinetic Request",
            source_group="Shop > Orders",
            tree_name="Cooling Off Period",
            source_id="O-7",
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.task("Tell Customer").results == {
            "output": "order O-7 ships at 2027-01-15T09:00:00+00:00 unless you cancel"
        }
        assert "Ship" not in _names(engine, run.id)
        clock.now = T0 + 3600
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert run.task("Ship").results == {"output": "order O-7 shipped"}
        assert run.status is RunStatus.COMPLETED
