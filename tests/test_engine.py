"""Execution semantics (the README's Semantics) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine import (
    BadAction,
    BadRequest,
    BadResults,
    Engine,
    ErrorType,
    RunStatus,
    TaskStatus,
    TokenNotFound,
    TreeError,
    TreeNotFound,
    TriggerAction,
    TriggerStatus,
)

from .support import (
    APPROVED,
    REGISTRATION,
    ExplodePlugin,
    counts,
    small_tree,
    start,
    start_small,
)

# -- createStart ---------------------------------------------------------------------------------


def test_create_start_stages_a_run_that_processing_starts(engine: Engine) -> None:
    trigger = engine.create_start(**REGISTRATION, source_id="REG-1")
    assert trigger.action is TriggerAction.ROOT
    assert trigger.status is TriggerStatus.NEW
    assert engine.get_run(trigger.run_id).status is RunStatus.STAGED
    assert engine.run_until_idle() == 1
    assert engine.get_trigger(trigger.id).status is TriggerStatus.CLOSED
    assert engine.get_run(trigger.run_id).status is RunStatus.STARTED


def test_inputs_come_from_the_results_xml(engine: Engine) -> None:
    run_id = start(
        engine,
        {**REGISTRATION, "tree_name": "Parallel Checks"},
        results='<results><result name="Attendee">Ada</result></results>',
    )
    run = engine.get_run(run_id)
    assert run.inputs == {"Attendee": "Ada"}
    assert run.task("Check Budget").results == {"output": "budget ok for Ada"}


def test_idempotency_key_returns_the_first_trigger_and_starts_nothing(engine: Engine) -> None:
    first = engine.create_start(**REGISTRATION, source_id="A", idempotency_key="order-7")
    again = engine.create_start(**REGISTRATION, source_id="A", idempotency_key="order-7")
    assert again.id == first.id
    assert again.run_id == first.run_id
    assert counts(engine)["runs"] == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tree_name": "No Such Tree"}, TreeNotFound, "Unable to locate the tree 'No Such Tree'"),
        ({"source_group": "Elsewhere"}, TreeNotFound, "group 'Elsewhere'"),
        ({"results": "<results><result name='a'>x</results>"}, BadResults, "line 1"),
        ({"results": "<other/>"}, BadResults, "other"),
        (
            {"results": '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><results/>'},
            BadResults,
            "DOCTYPE",
        ),
        ({"tree_name": ""}, BadRequest, "tree_name: must not be empty"),
        ({"message": "m" * 70_000}, BadRequest, "message: longer than"),
        ({"source_id": "REG\x001"}, BadRequest, "source_id: contains a NUL character"),
        ({"message": "ok\x00"}, BadRequest, "message: contains a NUL character"),
    ],
    ids=[
        "unknown-tree",
        "unknown-group",
        "malformed-xml",
        "wrong-root",
        "xxe",
        "empty-name",
        "huge-message",
        "nul-in-source-id",
        "nul-in-message",
    ],
)
def test_bad_create_start_is_refused_and_writes_nothing(
    engine: Engine, kwargs: dict[str, str], error: type[Exception], match: str
) -> None:
    before = counts(engine)
    with pytest.raises(error, match=match):
        engine.create_start(**{**REGISTRATION, "source_id": "X", **kwargs})
    assert counts(engine) == before


def test_inactive_tree_is_refused(engine: Engine) -> None:
    engine.load_tree(
        small_tree("Retired", {"Start": {"handler": "system_start_v1"}}) | {"status": "Inactive"}
    )
    with pytest.raises(TreeNotFound, match="the tree is Inactive"):
        engine.create_start(source_name="Tests", source_group="Semantics", tree_name="Retired")
    assert counts(engine)["runs"] == 0


# -- deferral ------------------------------------------------------------------------------------


def test_deferred_node_runs_create_connectors_and_pauses(engine: Engine) -> None:
    run = engine.get_run(start(engine, source_id="REG-2"))
    review = run.task("Review")
    assert review.status is TaskStatus.DEFERRED
    assert len(review.token or "") == 40
    assert run.task("Notify Reviewer").results == {
        "output": f"Please review registration REG-2: token {review.token}"
    }
    assert [t.name for t in run.tasks] == ["Start", "Review", "Notify Reviewer"]
    assert run.status is RunStatus.STARTED
    assert run.open_tokens == {"Review": review.token}


def test_complete_merges_results_and_follows_complete_connectors(engine: Engine) -> None:
    run_id = start(engine, source_id="REG-3")
    token = engine.get_run(run_id).task("Review").token
    trigger = engine.create_deferred(
        token=token, action="Complete", results=APPROVED, message="ok by Ben"
    )
    assert trigger.action is TriggerAction.COMPLETE
    assert trigger.run_id == run_id
    engine.run_until_idle()
    run = engine.get_run(run_id)
    assert run.task("Review").status is TaskStatus.CLOSED
    assert run.task("Review").results["Status"] == "Approved"
    assert run.task("Review").results["deferral_token"] == token
    assert run.task("Approved").results == {"output": "Registration REG-3 approved: Approved"}
    assert [t.name for t in run.tasks] == ["Start", "Review", "Notify Reviewer", "Approved"]
    assert run.status is RunStatus.COMPLETED
    assert engine.get_trigger(trigger.id).message == "ok by Ben"


def test_false_condition_is_not_followed(engine: Engine) -> None:
    run_id = start(engine, source_id="REG-4")
    token = engine.get_run(run_id).task("Review").token
    engine.create_deferred(
        token=token, results='<results><result name="Status">Denied</result></results>'
    )
    engine.run_until_idle()
    names = [t.name for t in engine.get_run(run_id).tasks]
    assert "Denied" in names
    assert "Approved" not in names


def test_seed_example_with_typographic_quotes_completes(engine: Engine) -> None:
    run_id = start(engine)
    token = engine.get_run(run_id).task("Review").token
    engine.create_deferred(
        token=token,
        action="Complete",
        results="<results><result name=“Status”>Approved</result></results>",
        message="Request approved by Ben Christenson on March 1st.",
    )
    engine.run_until_idle()
    assert engine.get_run(run_id).task("Review").results["Status"] == "Approved"


def test_update_keeps_task_deferred_and_fires_update_connectors_each_time(engine: Engine) -> None:
    tree = {**REGISTRATION, "source_group": "Service Desk", "tree_name": "Ticket Progress"}
    run_id = start(engine, tree, source_id="T-9")
    token = engine.get_run(run_id).task("Work Ticket").token
    for progress in ("triaged", "fixed"):
        engine.create_deferred(
            token=token,
            action="Update",
            results=f'<results><result name="Progress">{progress}</result></results>',
        )
        engine.run_until_idle()
    run = engine.get_run(run_id)
    assert run.task("Work Ticket").status is TaskStatus.DEFERRED
    notes = [t.results["output"] for t in run.tasks if t.name == "Progress Note"]
    assert notes == ["ticket T-9: triaged", "ticket T-9: fixed"]
    assert "Close Ticket" not in [t.name for t in run.tasks]
    assert run.status is RunStatus.STARTED
    engine.create_deferred(token=token, action="Complete")
    engine.run_until_idle()
    run = engine.get_run(run_id)
    assert run.task("Close Ticket").status is TaskStatus.CLOSED
    assert run.status is RunStatus.COMPLETED


def test_update_and_complete_queued_together_apply_in_order(engine: Engine) -> None:
    tree = {**REGISTRATION, "source_group": "Service Desk", "tree_name": "Ticket Progress"}
    run_id = start(engine, tree, source_id="T-10")
    token = engine.get_run(run_id).task("Work Ticket").token
    engine.create_deferred(
        token=token,
        action="Update",
        results='<results><result name="Progress">half</result></results>',
    )
    engine.create_deferred(token=token, action="Complete")
    with pytest.raises(TokenNotFound):
        engine.create_deferred(token=token, action="Update")
    engine.run_until_idle()
    names = [t.name for t in engine.get_run(run_id).tasks]
    assert names == ["Start", "Work Ticket", "Progress Note", "Close Ticket"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"token": "0" * 40},
            TokenNotFound,
            r"Unable to locate a task instance with the specified deferral token \(0{40}\)",
        ),
        (
            {"action": "Finish"},
            BadAction,
            "Invalid action 'Finish': expected one of Complete, Update",
        ),
        ({"results": "<results>"}, BadResults, "line 1"),
        ({"token": "t" * 500}, BadRequest, "token: longer than 128"),
    ],
    ids=["unknown-token", "bad-action", "malformed-results", "oversized-token"],
)
def test_bad_create_deferred_is_refused_and_writes_nothing(
    engine: Engine, kwargs: dict[str, str], error: type[Exception], match: str
) -> None:
    run_id = start(engine)
    token = engine.get_run(run_id).task("Review").token
    before = counts(engine)
    with pytest.raises(error, match=match):
        engine.create_deferred(**{"token": token, "action": "Complete", **kwargs})
    assert counts(engine) == before
    assert engine.get_run(run_id).task("Review").status is TaskStatus.DEFERRED


def test_consumed_token_is_refused_with_the_seed_message(engine: Engine) -> None:
    run_id = start(engine)
    token = engine.get_run(run_id).task("Review").token
    engine.create_deferred(token=token, results=APPROVED)
    message = f"Unable to locate a task instance with the specified deferral token ({token})"
    with pytest.raises(TokenNotFound) as refused:
        engine.create_deferred(token=token, results=APPROVED)
    assert str(refused.value) == message
    engine.run_until_idle()
    with pytest.raises(TokenNotFound):
        engine.create_deferred(token=token, action="Update")


# -- joins, errors -------------------------------------------------------------------------------


def test_join_all_waits_for_every_branch_and_fires_once(engine: Engine) -> None:
    run = engine.get_run(
        start(
            engine,
            {**REGISTRATION, "tree_name": "Parallel Checks"},
            results='<results><result name="Attendee">Bo</result></results>',
        )
    )
    assert [t.name for t in run.tasks].count("Report") == 1
    assert run.task("All Checked").status is TaskStatus.CLOSED
    assert run.task("Report").results == {"output": "budget ok for Bo; travel ok; calendar ok"}
    assert run.status is RunStatus.COMPLETED


def _join_tree(kind: str, number: str = "") -> dict[str, object]:
    branches = ["A", "B", "C"]
    nodes: dict[str, object] = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": b} for b in branches]},
        "Join": {
            "handler": "system_join_v1",
            "parameters": {"type": kind, "number": number},
            "connectors": [{"to": "After"}],
        },
        "After": {"handler": "system_noop_v1"},
    }
    for branch in branches:
        nodes[branch] = {
            "handler": "utilities_defer_v1",
            "defers": True,
            "connectors": [{"to": "Join"}],
        }
    return small_tree(f"Join {kind}", nodes)


@pytest.mark.parametrize(
    ("kind", "number", "fires_after"), [("All", "", 3), ("Any", "", 1), ("Some", "2", 2)]
)
def test_join_fires_when_its_type_is_met(
    engine: Engine, kind: str, number: str, fires_after: int
) -> None:
    engine.load_tree(_join_tree(kind, number))
    run_id = start_small(engine, f"Join {kind}")
    tokens = [engine.get_run(run_id).task(b).token for b in "ABC"]
    for completed, token in enumerate(tokens, start=1):
        engine.create_deferred(token=token)
        engine.run_until_idle()
        names = [t.name for t in engine.get_run(run_id).tasks]
        assert names.count("After") == (1 if completed >= fires_after else 0)
    join = engine.get_run(run_id).task("Join")
    assert join.status is TaskStatus.CLOSED
    assert engine.get_run(run_id).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("0", "number '0' is not a whole number from 1 to 3"),
        ("4", "number '4' is not a whole number from 1 to 3"),
        ("two", "number 'two' is not a whole number from 1 to 3"),
    ],
    ids=["none", "more than its connectors", "not a number"],
)
def test_a_rendered_some_number_the_loader_would_refuse_fails_the_join(
    engine: Engine, number: str, reason: str
) -> None:
    engine.load_tree(_join_tree("Some", "{{ inputs['Wanted'] }}"))
    results = f'<results><result name="Wanted">{number}</result></results>'
    run_id = start_small(engine, "Join Some", results=results)
    for branch in "ABC":
        engine.create_deferred(token=engine.get_run(run_id).task(branch).token or "")
        engine.run_until_idle()

    run = engine.get_run(run_id)
    assert [t.name for t in run.tasks].count("After") == 0
    assert run.task("Join").status is TaskStatus.FAILED
    assert [(e.type, e.summary) for e in run.errors] == [
        ("Node Parameter Error", f"Join 'Join': {reason}")
    ]
    assert run.status is RunStatus.FAILED


def test_plain_node_reached_twice_runs_twice(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Merge",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "A"}, {"to": "B"}]},
                "A": {"handler": "system_noop_v1", "connectors": [{"to": "Merge"}]},
                "B": {"handler": "system_noop_v1", "connectors": [{"to": "Merge"}]},
                "Merge": {"handler": "system_noop_v1"},
            },
        )
    )
    run = engine.get_run(start_small(engine, "Merge"))
    assert [t.name for t in run.tasks] == ["Start", "A", "Merge", "B", "Merge"]


def test_missing_key_is_a_node_parameter_error_and_other_branches_go_on(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Missing Key",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Broken"}, {"to": "Fine"}],
                },
                "Broken": {
                    "handler": "utilities_echo_v1",
                    # A computed name: the load's reference checks refuse a constant one.
                    "parameters": {"input": "{{ results['No' ~ 'pe']['x'] }}"},
                    "connectors": [{"to": "After Broken"}],
                },
                "After Broken": {"handler": "system_noop_v1"},
                "Fine": {"handler": "utilities_echo_v1", "parameters": {"input": "fine"}},
            },
        )
    )
    run = engine.get_run(start_small(engine, "Missing Key"))
    assert run.task("Broken").status is TaskStatus.FAILED
    assert run.task("Fine").results == {"output": "fine"}
    assert "After Broken" not in [t.name for t in run.tasks]
    [error] = run.errors
    assert error.type == ErrorType.NODE_PARAMETER.value
    assert error.node == "Broken"
    assert "Nope" in error.summary
    assert run.status is RunStatus.FAILED


def test_missing_key_in_a_condition_is_a_connector_error(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Bad Condition",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Next", "condition": "inputs['Absent'] == 'x'"}],
                },
                "Next": {"handler": "system_noop_v1"},
            },
        )
    )
    run = engine.get_run(start_small(engine, "Bad Condition"))
    [error] = run.errors
    assert error.type == ErrorType.CONNECTOR.value
    assert error.connector_to == "Next"
    assert "Absent" in error.summary
    assert [t.name for t in run.tasks] == ["Start"]
    assert run.status is RunStatus.FAILED


def test_handler_exception_is_a_handler_error_with_traceback(database_url: str) -> None:
    with Engine(database_url, plugins=[ExplodePlugin()]) as engine:
        engine.load_tree(
            small_tree(
                "Explode",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                    "Send": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
                },
            )
        )
        run = engine.get_run(start_small(engine, "Explode"))
    [error] = run.errors
    assert error.type == "Handler Error"
    assert error.summary == "tests_explode_v1 raised RuntimeError: the mail server said no"
    assert "Traceback" in error.text
    assert run.task("Send").status is TaskStatus.FAILED
    assert run.status is RunStatus.FAILED


def test_data_values_are_never_evaluated(engine: Engine) -> None:
    run_id = start(
        engine,
        {**REGISTRATION, "tree_name": "Parallel Checks"},
        results='<results><result name="Attendee">'
        "{{ 7*7 }}{% for x in range(3) %}x{% endfor %}</result></results>",
    )
    output = engine.get_run(run_id).task("Check Budget").results["output"]
    assert output == "budget ok for {{ 7*7 }}{% for x in range(3) %}x{% endfor %}"


def test_create_trigger_node_completes_another_runs_task(engine: Engine) -> None:
    waiting = start(engine, source_id="REG-5")
    token = engine.get_run(waiting).task("Review").token
    engine.load_tree(
        small_tree(
            "Approver",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Approve"}]},
                "Approve": {
                    "handler": "utilities_create_trigger_v1",
                    "parameters": {
                        "action_type": "Complete",
                        "deferral_token": "{{ inputs['Token'] }}",
                        "deferred_variables": APPROVED,
                        "message": "auto-approved",
                    },
                },
            },
        )
    )
    approver = start_small(
        engine, "Approver", results=f'<results><result name="Token">{token}</result></results>'
    )
    results = engine.get_run(approver).task("Approve").results
    assert results["run_id"] == str(waiting)
    assert engine.get_trigger(int(results["trigger_id"])).message == "auto-approved"
    run = engine.get_run(waiting)
    assert run.task("Approved").status is TaskStatus.CLOSED
    assert run.status is RunStatus.COMPLETED


# -- versions ------------------------------------------------------------------------------------


def test_changed_tree_is_a_new_version_and_runs_finish_on_their_own(engine: Engine) -> None:
    def pause_then(text: str) -> dict[str, object]:
        return small_tree(
            "Versioned",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Wait"}]},
                "Wait": {
                    "handler": "utilities_defer_v1",
                    "defers": True,
                    "connectors": [{"to": "Say"}],
                },
                "Say": {"handler": "utilities_echo_v1", "parameters": {"input": text}},
            },
        )

    engine.load_tree(pause_then("version one"))
    old = start_small(engine, "Versioned")
    engine.load_tree(pause_then("version one"))  # same content: same version
    engine.load_tree(pause_then("version two"))
    new = start_small(engine, "Versioned")
    for run_id in (old, new):
        engine.create_deferred(token=engine.get_run(run_id).task("Wait").token)
    engine.run_until_idle()
    assert engine.get_run(old).tree_version == 1
    assert engine.get_run(old).task("Say").results == {"output": "version one"}
    assert engine.get_run(new).tree_version == 2
    assert engine.get_run(new).task("Say").results == {"output": "version two"}


def test_another_engine_runs_a_version_it_never_loaded(database_url: str) -> None:
    with Engine(database_url) as loader:
        loader.load_tree(
            small_tree(
                "Elsewhere",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
                    "Echo": {
                        "handler": "utilities_echo_v1",
                        "parameters": {"input": "{{ source.id }}"},
                    },
                },
            )
        )
    with Engine(database_url) as worker:
        trigger = worker.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Elsewhere", source_id="S-1"
        )
        worker.run_until_idle()
        assert worker.get_run(trigger.run_id).task("Echo").results == {"output": "S-1"}


def test_invalid_tree_is_refused_by_load_tree(engine: Engine) -> None:
    with pytest.raises(TreeError, match="unknown handler 'nope_v1'"):
        engine.load_tree(small_tree("Bad", {"Start": {"handler": "nope_v1"}}))
    assert engine.tree_version(next(iter([t.key for t in engine.trees]))) == 1
