"""Errors and their resolutions (Retry Task, Skip Task, Do Nothing, Continue / Cancel Branch)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import sqlalchemy as sa

from engine import (
    BadResolution,
    Engine,
    ErrorAlreadyResolved,
    ErrorNotFound,
    ErrorStatus,
    ErrorType,
    Handler,
    HandlerContext,
    Parameter,
    RunStatus,
    TaskStatus,
    TriggerAction,
    TriggerStatus,
    hookimpl,
)

from .support import counts, race, small_tree, start_small


class Flaky:
    """A mail handler that fails while ``failures`` is above zero, then sends."""

    def __init__(self) -> None:
        self.failures = 1
        self.sent: list[str] = []

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("the mail server said no")
        self.sent.append(context.parameters["to"])
        return {"sent": context.parameters["to"]}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [
            Handler(
                "tests_flaky_v1",
                self.execute,
                parameters=(Parameter("to", required=True),),
                results=("sent",),
            )
        ]


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture
def eng(database_url: str, flaky: Flaky) -> Iterator[Engine]:
    with Engine(database_url, plugins=[flaky]) as engine:
        yield engine


def _mail_tree(engine: Engine) -> None:
    """Start -> Send (flaky) -> After Send; Start -> Other."""
    engine.load_tree(
        small_tree(
            "Mail",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Send"}, {"to": "Other"}],
                },
                "Send": {
                    "handler": "tests_flaky_v1",
                    "parameters": {"to": "{{ source.id }}@example.com"},
                    "connectors": [{"to": "After Send"}],
                },
                "After Send": {
                    "handler": "utilities_echo_v1",
                    "parameters": {"input": "sent: {{ results['Send']['sent'] }}"},
                },
                "Other": {"handler": "system_noop_v1"},
            },
        )
    )


def _failed_mail(engine: Engine) -> tuple[int, str]:
    _mail_tree(engine)
    run_id = start_small(engine, "Mail", source_id="ann")
    run = engine.get_run(run_id)
    assert run.status is RunStatus.FAILED
    [error] = run.errors
    assert (error.type, error.node, error.status) == ("Handler Error", "Send", "Active")
    return run_id, error.id


def _resolve(engine: Engine, error_id: str, action: str, **kwargs: str) -> None:
    engine.resolve_error(error_id, action, **kwargs)
    engine.run_until_idle()


def _names(engine: Engine, run_id: int) -> list[str]:
    return [t.name for t in engine.get_run(run_id).tasks]


# -- node errors: Retry Task, Skip Task, Do Nothing ----------------------------------------------


def test_retry_task_runs_the_node_again_as_a_new_task_and_the_run_completes(
    eng: Engine, flaky: Flaky
) -> None:
    run_id, error_id = _failed_mail(eng)
    trigger = eng.resolve_error(error_id, "Retry Task", message="server is back", resolved_by="op")
    assert (trigger.action, trigger.status) == (TriggerAction.RESOLVE, TriggerStatus.NEW)
    assert eng.get_error(error_id).status == ErrorStatus.ACTIVE  # accepted, not yet applied
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert [(t.name, t.status) for t in run.tasks if t.name == "Send"] == [
        ("Send", TaskStatus.FAILED),
        ("Send", TaskStatus.CLOSED),
    ]
    assert run.task("Send").results == {"sent": "ann@example.com"}
    assert run.task("After Send").results == {"output": "sent: ann@example.com"}
    assert flaky.sent == ["ann@example.com"]
    [error] = run.errors
    assert error.status == ErrorStatus.HANDLED
    assert error.resolution_action == "Retry Task"
    assert error.resolution_message == "server is back"
    assert error.resolved_by == "op"
    assert error.resolved_at is not None
    assert error.resolution_trigger_id == trigger.id
    assert eng.get_trigger(trigger.id).status is TriggerStatus.CLOSED


def test_retry_task_that_fails_again_records_a_new_error_and_the_run_stays_failed(
    eng: Engine, flaky: Flaky
) -> None:
    run_id, error_id = _failed_mail(eng)
    flaky.failures = 1
    _resolve(eng, error_id, "Retry Task")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert [(e.id == error_id, e.status) for e in run.errors] == [
        (True, "Handled"),
        (False, "Active"),
    ]
    assert [t.status for t in run.tasks if t.name == "Send"] == [TaskStatus.FAILED] * 2
    second = run.errors[1].id
    _resolve(eng, second, "Retry Task")
    assert eng.get_run(run_id).status is RunStatus.COMPLETED


def test_skip_task_closes_the_failed_task_with_no_results_and_follows_its_connectors(
    eng: Engine, flaky: Flaky
) -> None:
    eng.load_tree(
        small_tree(
            "Skip",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                "Send": {
                    "handler": "tests_flaky_v1",
                    "parameters": {"to": "x"},
                    "connectors": [{"to": "Next"}],
                },
                "Next": {"handler": "utilities_echo_v1", "parameters": {"input": "went on"}},
            },
        )
    )
    run_id = start_small(eng, "Skip")
    [error] = eng.get_run(run_id).errors
    _resolve(eng, error.id, "Skip Task")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert _names(eng, run_id) == ["Start", "Send", "Next"]  # no second Send task
    assert (run.task("Send").status, run.task("Send").results) == (TaskStatus.CLOSED, {})
    assert run.task("Next").results == {"output": "went on"}
    assert flaky.sent == []  # the handler did not run again
    assert run.errors[0].status == "Handled"


def test_skip_task_of_a_node_parameter_error(eng: Engine) -> None:
    eng.load_tree(
        small_tree(
            "Missing Key",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Broken"}]},
                "Broken": {
                    "handler": "utilities_echo_v1",
                    "parameters": {"input": "{{ results['No' ~ 'pe']['x'] }}"},
                    "connectors": [{"to": "After"}],
                },
                "After": {"handler": "system_noop_v1"},
            },
        )
    )
    run_id = start_small(eng, "Missing Key")
    [error] = eng.get_run(run_id).errors
    assert error.type == ErrorType.NODE_PARAMETER.value
    _resolve(eng, error.id, "Skip Task")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("After").status is TaskStatus.CLOSED


def test_retry_task_renders_parameters_again_from_the_results_as_they_are_now(
    eng: Engine,
) -> None:
    """A parameter names a result not there yet; once it is, Retry Task renders it."""
    eng.load_tree(
        small_tree(
            "Join Retry",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Gate"}, {"to": "Slow"}],
                },
                "Slow": {"handler": "utilities_defer_v1", "defers": True},
                "Gate": {
                    "handler": "utilities_echo_v1",
                    "parameters": {"input": "{{ results['Slow']['Decision'] }}"},
                },
            },
        )
    )
    run_id = start_small(eng, "Join Retry")
    run = eng.get_run(run_id)
    [error] = run.errors
    assert (error.type, error.node) == (ErrorType.NODE_PARAMETER.value, "Gate")
    eng.create_deferred(
        token=run.task("Slow").token or "",
        results='<results><result name="Decision">go</result></results>',
    )
    eng.run_until_idle()
    assert eng.get_run(run_id).status is RunStatus.FAILED  # the error is still active
    _resolve(eng, error.id, "Retry Task")
    run = eng.get_run(run_id)
    assert run.task("Gate").results == {"output": "go"}
    assert run.status is RunStatus.COMPLETED


def test_do_nothing_marks_the_error_handled_and_leaves_the_branch_stopped(eng: Engine) -> None:
    run_id, error_id = _failed_mail(eng)
    _resolve(eng, error_id, "Do Nothing", message="not needed")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED  # nothing pending, no active error
    assert "After Send" not in _names(eng, run_id)
    assert run.task("Send").status is TaskStatus.FAILED
    assert (run.errors[0].status, run.errors[0].resolution_action) == ("Handled", "Do Nothing")


def test_a_run_with_two_errors_stays_failed_until_both_are_resolved(eng: Engine) -> None:
    eng.load_tree(
        small_tree(
            "Two Errors",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "A"}, {"to": "B"}]},
                "A": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ inputs['x'] }}"}},
                "B": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ inputs['y'] }}"}},
            },
        )
    )
    run_id = start_small(eng, "Two Errors")
    first, second = eng.get_run(run_id).errors
    _resolve(eng, first.id, "Do Nothing")
    assert eng.get_run(run_id).status is RunStatus.FAILED
    _resolve(eng, second.id, "Skip Task")
    assert eng.get_run(run_id).status is RunStatus.COMPLETED


# -- connector errors: Continue Branch, Cancel Branch --------------------------------------------


def _bad_condition(engine: Engine) -> tuple[int, str]:
    engine.load_tree(
        small_tree(
            "Bad Condition",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Next", "condition": "inputs['Absent'] == 'x'"}],
                },
                "Next": {"handler": "utilities_echo_v1", "parameters": {"input": "next"}},
            },
        )
    )
    run_id = start_small(engine, "Bad Condition")
    [error] = engine.get_run(run_id).errors
    assert (error.type, error.connector_to) == (ErrorType.CONNECTOR.value, "Next")
    return run_id, error.id


def test_continue_branch_follows_the_connector_as_if_its_condition_held(eng: Engine) -> None:
    run_id, error_id = _bad_condition(eng)
    _resolve(eng, error_id, "Continue Branch")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Next").results == {"output": "next"}
    assert run.errors[0].status == "Handled"


def test_cancel_branch_leaves_the_connector_unfollowed(eng: Engine) -> None:
    run_id, error_id = _bad_condition(eng)
    _resolve(eng, error_id, "Cancel Branch")
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert _names(eng, run_id) == ["Start"]
    assert run.errors[0].resolution_action == "Cancel Branch"


# -- junctions -----------------------------------------------------------------------------------


def _junction_tree(engine: Engine) -> int:
    engine.load_tree(
        small_tree(
            "Junction Wait",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Split"}]},
                "Split": {
                    "handler": "system_noop_v1",
                    "connectors": [{"to": "Send"}, {"to": "Fine"}],
                },
                "Send": {
                    "handler": "tests_flaky_v1",
                    "parameters": {"to": "x"},
                    "connectors": [{"to": "Done"}],
                },
                "Fine": {"handler": "system_noop_v1", "connectors": [{"to": "Done"}]},
                "Done": {"handler": "system_junction_v1", "connectors": [{"to": "Report"}]},
                "Report": {"handler": "utilities_echo_v1", "parameters": {"input": "done"}},
            },
        )
    )
    run_id = start_small(engine, "Junction Wait")
    run = engine.get_run(run_id)
    assert run.task("Done").status is TaskStatus.NEW  # waiting on the failed branch
    assert "Report" not in _names(engine, run_id)
    return run_id


def test_junction_waiting_on_a_failed_branch_fires_after_skip_task(eng: Engine) -> None:
    run_id = _junction_tree(eng)
    [error] = eng.get_run(run_id).errors
    _resolve(eng, error.id, "Skip Task")
    run = eng.get_run(run_id)
    assert run.task("Done").status is TaskStatus.CLOSED
    assert run.task("Report").results == {"output": "done"}
    assert _names(eng, run_id).count("Report") == 1
    assert run.status is RunStatus.COMPLETED


def test_junction_waiting_on_a_failed_branch_fires_after_do_nothing(eng: Engine) -> None:
    run_id = _junction_tree(eng)
    [error] = eng.get_run(run_id).errors
    _resolve(eng, error.id, "Do Nothing")
    run = eng.get_run(run_id)
    assert run.task("Done").status is TaskStatus.CLOSED
    assert run.task("Report").results == {"output": "done"}
    assert run.status is RunStatus.COMPLETED


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ("Continue Branch", "'Continue Branch' cannot resolve a Handler Error: expected one of "),
        ("Retry", "'Retry' cannot resolve a Handler Error: expected one of Retry Task, Skip Task"),
        ("retry task", "'retry task' cannot resolve a Handler Error"),
    ],
    ids=["connector-action", "unknown-action", "wrong-case"],
)
def test_invalid_action_for_a_node_error_is_refused_by_name_and_nothing_written(
    eng: Engine, action: str, match: str
) -> None:
    _, error_id = _failed_mail(eng)
    before = counts(eng)
    with pytest.raises(BadResolution, match=match) as caught:
        eng.resolve_error(error_id, action)
    assert caught.value.error_type == "Handler Error"
    assert caught.value.allowed == ("Retry Task", "Skip Task", "Do Nothing")
    assert counts(eng) == before
    assert eng.get_error(error_id).resolution_action is None


@pytest.mark.parametrize("action", ["Retry Task", "Skip Task", "Do Nothing"])
def test_node_actions_are_refused_for_a_connector_error(eng: Engine, action: str) -> None:
    _, error_id = _bad_condition(eng)
    before = counts(eng)
    expected = f"'{action}' cannot resolve a Connector Error: expected one of Continue Branch, "
    with pytest.raises(BadResolution, match=expected + "Cancel Branch"):
        eng.resolve_error(error_id, action)
    assert counts(eng) == before


def test_unknown_error_id_is_refused(eng: Engine) -> None:
    with pytest.raises(ErrorNotFound, match="Unable to locate an error with the id 'nope'"):
        eng.resolve_error("nope", "Do Nothing")
    with pytest.raises(ErrorNotFound):
        eng.get_error("nope")


def test_an_error_resolved_already_is_refused_and_nothing_written(eng: Engine) -> None:
    _, error_id = _failed_mail(eng)
    eng.resolve_error(error_id, "Do Nothing")
    queued = counts(eng)
    with pytest.raises(ErrorAlreadyResolved, match="already been resolved with 'Do Nothing'"):
        eng.resolve_error(error_id, "Retry Task")  # queued, not yet applied
    eng.run_until_idle()
    done = counts(eng)
    with pytest.raises(ErrorAlreadyResolved):
        eng.resolve_error(error_id, "Do Nothing")
    assert counts(eng) == done
    assert queued["triggers"] == done["triggers"]


def test_eight_threads_resolving_one_error_exactly_one_is_accepted(
    eng: Engine, flaky: Flaky
) -> None:
    run_id, error_id = _failed_mail(eng)
    outcomes = race(8, lambda: eng.resolve_error(error_id, "Retry Task"))
    accepted = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(accepted) == 1
    assert len(refused) == 7
    assert all(isinstance(o, ErrorAlreadyResolved) for o in refused)
    with eng.database.read() as connection:
        resolves = connection.execute(
            sa.text("SELECT count(*) FROM triggers WHERE action = 'Resolve'")
        ).scalar_one()
    assert resolves == 1
    eng.run_until_idle()
    run = eng.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert flaky.sent == ["ann@example.com"]


# -- listing -------------------------------------------------------------------------------------


def test_list_errors_filters_by_run_status_and_type(eng: Engine) -> None:
    mail_run, mail_error = _failed_mail(eng)
    condition_run, _ = _bad_condition(eng)
    assert [e.run_id for e in eng.list_errors()] == [condition_run, mail_run]  # newest first
    assert [e.id for e in eng.list_errors(run_id=mail_run)] == [mail_error]
    assert [e.type for e in eng.list_errors(error_type="Connector Error")] == ["Connector Error"]
    _resolve(eng, mail_error, "Do Nothing")
    assert [e.id for e in eng.list_errors(status="Handled")] == [mail_error]
    assert [e.run_id for e in eng.list_errors(status="Active")] == [condition_run]
