"""Resolving errors raised before any node ran: Missing Handler Errors and Trigger Errors."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import sqlalchemy as sa

from engine import (
    BadResolution,
    Engine,
    ErrorType,
    Handler,
    HandlerContext,
    RunStatus,
    TaskStatus,
    TriggerStatus,
    hookimpl,
)

from .support import REGISTRATION, counts, small_tree


class Greeter:
    """A plugin that an engine may lack: trees using it then no longer build there."""

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        return {"greeting": "hello"}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_greet_v1", self.execute, results=("greeting",))]


GREET = small_tree(
    "Greet",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Greet"}]},
        "Greet": {"handler": "tests_greet_v1"},
    },
)
GREET_KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Greet"}


def _staged_without_plugin(database_url: str) -> tuple[int, int, str]:
    """A run accepted by an engine with the plugin, processed by one without it."""
    with Engine(database_url, plugins=[Greeter()]) as engine:
        engine.load_tree(GREET)
        trigger = engine.create_start(**GREET_KEY)
    with Engine(database_url) as engine:
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
    [error] = run.errors
    assert (error.type, error.node, error.trigger_id) == ("Missing Handler Error", "", trigger.id)
    assert run.status is RunStatus.STAGED
    return trigger.run_id, trigger.id, error.id


def test_missing_handler_error_of_a_trigger_cannot_be_skipped(database_url: str) -> None:
    _, _, error_id = _staged_without_plugin(database_url)
    with Engine(database_url) as engine:
        before = counts(engine)
        expected = "'Skip Task' cannot resolve a Missing Handler Error: expected one of "
        with pytest.raises(BadResolution, match=expected + "Retry Task, Do Nothing$"):
            engine.resolve_error(error_id, "Skip Task")
        assert counts(engine) == before


def test_retry_task_queues_the_failed_trigger_again_and_it_runs_once_the_plugin_is_back(
    database_url: str,
) -> None:
    run_id, root_id, error_id = _staged_without_plugin(database_url)
    with Engine(database_url, plugins=[Greeter()]) as engine:
        engine.resolve_error(error_id, "Retry Task", message="plugin installed")
        engine.run_until_idle()
        run = engine.get_run(run_id)
        assert engine.get_trigger(root_id).status is TriggerStatus.CLOSED
    assert run.status is RunStatus.COMPLETED
    assert run.task("Greet").results == {"greeting": "hello"}
    [error] = run.errors
    assert (error.status, error.resolution_action) == ("Handled", "Retry Task")


def test_retry_task_while_the_plugin_is_still_missing_records_a_new_error(
    database_url: str,
) -> None:
    run_id, root_id, error_id = _staged_without_plugin(database_url)
    with Engine(database_url) as engine:
        engine.resolve_error(error_id, "Retry Task")
        engine.run_until_idle()
        run = engine.get_run(run_id)
        assert engine.get_trigger(root_id).status is TriggerStatus.FAILED
    assert [(e.type, e.status) for e in run.errors] == [
        (ErrorType.MISSING_HANDLER.value, "Handled"),
        (ErrorType.MISSING_HANDLER.value, "Active"),
    ]


def test_do_nothing_resolves_a_missing_handler_error_without_the_tree_building(
    database_url: str,
) -> None:
    run_id, root_id, error_id = _staged_without_plugin(database_url)
    with Engine(database_url) as engine:
        resolve = engine.resolve_error(error_id, "Do Nothing")
        engine.run_until_idle()
        run = engine.get_run(run_id)
        assert engine.get_trigger(resolve.id).status is TriggerStatus.CLOSED
        assert engine.get_trigger(root_id).status is TriggerStatus.FAILED
    assert [(e.status, e.resolution_action) for e in run.errors] == [("Handled", "Do Nothing")]
    assert run.status is RunStatus.STAGED  # its Root trigger never ran


def _gave_up(engine: Engine) -> tuple[int, str]:
    """A Complete trigger that never finished within its attempts: a Trigger Error."""
    start = engine.create_start(**REGISTRATION, source_id="GIVE-UP")
    engine.run_until_idle()
    token = engine.get_run(start.run_id).task("Review").token or ""
    complete = engine.create_deferred(token=token, action="Complete")
    with engine.database.write() as connection:
        connection.execute(sa.text(f"UPDATE triggers SET attempts = 99 WHERE id = {complete.id}"))
    engine.run_until_idle()
    run = engine.get_run(start.run_id)
    [error] = run.errors
    assert error.type == ErrorType.TRIGGER.value
    assert "gave up after" in error.summary
    return start.run_id, error.id


@pytest.mark.parametrize("action", ["Retry Task", "Skip Task", "Continue Branch"])
def test_a_trigger_error_allows_only_do_nothing(engine: Engine, action: str) -> None:
    _, error_id = _gave_up(engine)
    before = counts(engine)
    expected = f"'{action}' cannot resolve a Trigger Error: expected one of Do Nothing$"
    with pytest.raises(BadResolution, match=expected):
        engine.resolve_error(error_id, action)
    assert counts(engine) == before


def test_do_nothing_resolves_a_trigger_error(engine: Engine) -> None:
    run_id, error_id = _gave_up(engine)
    engine.resolve_error(error_id, "Do Nothing")
    engine.run_until_idle()
    run = engine.get_run(run_id)
    assert run.errors[0].status == "Handled"
    assert run.task("Review").status is TaskStatus.DEFERRED
