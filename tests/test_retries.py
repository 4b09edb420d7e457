"""Retry policies: a failed handler runs again from a durable Retry trigger, moved by the clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import pytest
import sqlalchemy as sa

from engine import (
    Engine,
    ErrorType,
    Handler,
    HandlerContext,
    HandlerFailed,
    Parameter,
    RunStatus,
    TaskStatus,
    TreeError,
    hookimpl,
)

from .support import FixedClock, small_tree, start_small

T0 = 1_800_000_000.0


class Flaky:
    """Fails ``failures`` times (with ``error``), then answers; remembers each call's task id."""

    def __init__(self) -> None:
        self.failures = 0
        self.error: Exception = ConnectionError("the service is down")
        self.calls: list[str] = []
        self.release = threading.Event()
        self.hang = False

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        self.calls.append(context.task_id)
        if self.hang:
            self.release.wait(60)
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return {"answer": f"call {len(self.calls)}"}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [
            Handler(
                "tests_flaky_v1",
                self.execute,
                parameters=(Parameter("to"),),
                results=("answer",),
                error_codes=("rate_limited", "refused"),
            )
        ]


def _tree(retry: object, *, default: object = None, name: str = "Flaky") -> dict[str, object]:
    call: dict[str, object] = {"handler": "tests_flaky_v1", "connectors": [{"to": "After"}]}
    if retry is not None:
        call["retry"] = retry
    tree = small_tree(
        name,
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Call"}]},
            "Call": call,
            "After": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ results['Call']['answer'] }}"},
            },
        },
    )
    if default is not None:
        tree["retry"] = default
    return tree


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture
def eng(database_url: str, clock: FixedClock, flaky: Flaky) -> Iterator[Engine]:
    with Engine(database_url, plugins=[flaky], clock=clock) as engine:
        yield engine


def _retry_triggers(engine: Engine, run_id: int) -> list[Mapping[str, object]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status, due_at, idempotency_key FROM triggers"
                " WHERE run_id = :r AND action = 'Retry' ORDER BY id"
            ),
            {"r": run_id},
        )
        return [dict(row) for row in rows.mappings()]


BACKOFF = {"attempts": 4, "backoff": {"initial": "10s", "factor": 3, "max": "1m"}}


def test_a_handler_failing_twice_completes_on_its_third_attempt(
    eng: Engine, clock: FixedClock, flaky: Flaky
) -> None:
    eng.load_tree(_tree(BACKOFF))
    flaky.failures = 2
    run_id = start_small(eng, "Flaky")

    run = eng.get_run(run_id)
    call = run.task("Call")
    assert (run.status, call.status, call.attempt) == (RunStatus.STARTED, TaskStatus.RETRYING, 1)
    assert call.last_error == "tests_flaky_v1 raised ConnectionError: the service is down"
    assert run.errors == ()
    retries = _retry_triggers(eng, run_id)
    assert [(r["status"], r["due_at"]) for r in retries] == [("New", T0 + 10)]
    assert retries[0]["idempotency_key"] == f"retry:{call.id}:2"

    [waiting] = eng.explain(run_id).waiting
    assert (waiting.kind, waiting.node, waiting.task_id) == ("retry", "Call", call.id)
    assert waiting.waits_for == (
        "attempt 2 of its handler, a Retry trigger due after the back-off (attempt 1 failed:"
        " tests_flaky_v1 raised ConnectionError: the service is down); a worker must be running"
    )

    assert eng.run_until_idle() == 0  # not due yet: nothing runs
    clock.now = T0 + 10
    eng.run_until_idle()
    call = eng.get_run(run_id).task("Call")
    assert (call.status, call.attempt) == (TaskStatus.RETRYING, 2)
    assert _retry_triggers(eng, run_id)[-1]["due_at"] == T0 + 10 + 30  # 10 s, then 10 * 3

    clock.now = T0 + 40
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.errors == ()
    call = run.task("Call")
    assert (call.status, call.attempt, call.results) == (TaskStatus.CLOSED, 3, {"answer": "call 3"})
    assert run.task("After").results == {"output": "call 3"}
    assert len({t for t in flaky.calls}) == 1  # one task: its id is stable across attempts
    assert [r["status"] for r in _retry_triggers(eng, run_id)] == ["Closed", "Closed"]


def test_the_handler_error_appears_only_when_attempts_run_out(
    eng: Engine, clock: FixedClock, flaky: Flaky
) -> None:
    eng.load_tree(_tree({"attempts": 3, "backoff": {"initial": 5, "factor": 2}}))
    flaky.failures = 10
    run_id = start_small(eng, "Flaky")
    for due in (T0 + 5, T0 + 15):
        assert eng.get_run(run_id).errors == ()
        clock.now = due
        eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert len(flaky.calls) == 3
    (error,) = run.errors
    assert error.type == ErrorType.HANDLER
    assert error.summary.endswith("(attempt 3 of 3)")
    assert run.task("Call").status is TaskStatus.FAILED

    flaky.failures = 0  # Retry Task: a new task, with the policy's attempts anew
    eng.resolve_error(error.id, "Retry Task")
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Call").attempt == 1


def test_on_retries_only_the_named_failures(eng: Engine, clock: FixedClock, flaky: Flaky) -> None:
    eng.load_tree(_tree({"attempts": 5, "on": ["OSError", "rate_limited"]}))
    flaky.failures = 1
    flaky.error = HandlerFailed(handler="tests_flaky_v1", reason="slow down", code="rate_limited")
    retried = start_small(eng, "Flaky")
    assert eng.get_run(retried).task("Call").status is TaskStatus.RETRYING

    flaky.failures = 1
    flaky.error = HandlerFailed(handler="tests_flaky_v1", reason="no such account", code="refused")
    refused = start_small(eng, "Flaky")
    run = eng.get_run(refused)
    assert run.status is RunStatus.FAILED
    assert (
        run.errors[0].summary
        == "tests_flaky_v1 raised HandlerFailed: tests_flaky_v1: [refused] no such account"
    )

    flaky.failures = 1
    flaky.error = ConnectionRefusedError("closed")  # an OSError: matched by a base class
    by_base = start_small(eng, "Flaky")
    assert eng.get_run(by_base).task("Call").status is TaskStatus.RETRYING


def test_the_tree_default_applies_unless_a_node_sets_its_own(
    eng: Engine, clock: FixedClock, flaky: Flaky
) -> None:
    eng.load_tree(_tree(None, default={"attempts": 2}, name="Defaulted"))
    eng.load_tree(_tree({"attempts": 1}, default={"attempts": 2}, name="Off"))
    flaky.failures = 1
    defaulted = start_small(eng, "Defaulted")
    assert eng.get_run(defaulted).task("Call").status is TaskStatus.RETRYING
    clock.now = T0 + 1  # the default backoff starts at one second
    eng.run_until_idle()
    assert eng.get_run(defaulted).status is RunStatus.COMPLETED

    flaky.failures = 1
    off = start_small(eng, "Off")
    assert eng.get_run(off).status is RunStatus.FAILED


def test_jitter_is_within_the_fraction_and_the_same_when_replayed() -> None:
    from engine.tree.retry import RetryPolicy

    policy = RetryPolicy(attempts=5, initial=100, factor=2, max=1000, jitter=0.5)
    delays = [policy.delay(failed, "task-1") for failed in (1, 2, 3, 4)]
    assert all(base / 2 <= d <= base for d, base in zip(delays, (100, 200, 400, 800), strict=True))
    assert delays == [policy.delay(failed, "task-1") for failed in (1, 2, 3, 4)]
    assert delays != [policy.delay(failed, "task-2") for failed in (1, 2, 3, 4)]
    assert RetryPolicy(initial=100, factor=3, max=250).delay(3, "t") == 250


def test_a_timeout_fails_the_attempt_and_the_next_one_runs(
    eng: Engine, clock: FixedClock, flaky: Flaky
) -> None:
    eng.load_tree(_tree({"attempts": 2, "timeout": "50ms", "backoff": {"initial": 1}}))
    flaky.hang = True
    try:
        run_id = start_small(eng, "Flaky")
        call = eng.get_run(run_id).task("Call")
        assert call.status is TaskStatus.RETRYING
        assert (
            call.last_error == "tests_flaky_v1 raised HandlerTimeout: handler 'tests_flaky_v1'"
            " did not return within 0.05 s"
        )
    finally:
        flaky.hang = False
        flaky.release.set()
    clock.now = T0 + 1
    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ({"attempts": 0}, "'attempts' must be a whole number from 1 to 100, not 0"),
        ({"attempts": 2, "on": ["no_such_code"]}, "error code 'no_such_code' is not declared"),
        ({"backoff": {"initial": "soon"}}, "'initial' must be a duration"),
        ({"jitter": 2}, "'jitter' must be a fraction from 0 to 1"),
        ({"timeout": 0}, "'timeout' must be a duration above 0"),
        ({"attempts": 2, "retries": 3}, "unknown key 'retries'"),
        ({"backoff": {"initial": 60, "max": 10}}, "'max' (10 s) is shorter than 'initial' (60 s)"),
    ],
)
def test_a_bad_policy_is_refused_at_load_naming_the_problem(
    eng: Engine, retry: object, message: str
) -> None:
    with pytest.raises(TreeError) as refused:
        eng.load_tree(_tree(retry))
    assert message in str(refused.value)
    assert "node 'Call'" in str(refused.value)


def test_retry_on_a_wait_is_refused(eng: Engine) -> None:
    tree = _tree(None)
    tree["nodes"]["Call"] = {  # type: ignore[index]
        "handler": "system_wait_v1",
        "parameters": {"Time to wait": "1", "Time unit": "Minute"},
        "retry": {"attempts": 2},
    }
    with pytest.raises(TreeError, match="'retry' is for nodes whose handler runs"):
        eng.load_tree(tree)


def test_a_manual_trigger_completes_a_retrying_task_and_its_attempt_is_not_made(
    eng: Engine, clock: FixedClock, flaky: Flaky
) -> None:
    eng.load_tree(_tree({"attempts": 3, "backoff": {"initial": 60}}))
    flaky.failures = 5
    run_id = start_small(eng, "Flaky")
    answer = '<results><result name="answer">by hand</result></results>'
    eng.manual_trigger(run_id, "Call", results=answer, reason="the service is down", by="admin")
    eng.run_until_idle()
    clock.now = T0 + 600
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("After").results == {"output": "by hand"}
    assert len(flaky.calls) == 1  # the Retry found the task done
    assert [r["status"] for r in _retry_triggers(eng, run_id)] == ["Closed"]
