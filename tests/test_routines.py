"""Routines: a child run per call, inputs in, outputs back as the caller's results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from engine import (
    Engine,
    ErrorStatus,
    ErrorType,
    Handler,
    HandlerContext,
    Parameter,
    RunStatus,
    TaskStatus,
    TreeError,
    hookimpl,
)
from engine.results_xml import write_results
from engine.run.routines import MAX_CALL_DEPTH

from .support import small_tree, start_small, wait_for

VISITOR = '<results><result name="Visitor">Ada</result></results>'


def routine(
    definition_id: str,
    name: str,
    nodes: dict[str, Any],
    *,
    inputs: list[Any] | None = None,
    outputs: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "routine",
        "definition_id": definition_id,
        "source": "-",
        "group": "-",
        "name": name,
        "inputs": inputs if inputs is not None else ["Name"],
        "outputs": outputs if outputs is not None else ["Greeting"],
        "nodes": nodes,
        **extra,
    }


def greet(greeting: str = "Hello", **extra: Any) -> dict[str, Any]:
    """routine_greet_v1: Name (required) and Punctuation (default '!') in, Greeting out."""
    return routine(
        "routine_greet_v1",
        "Greet",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Compose"}]},
            "Compose": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": greeting + ", {{ inputs['Name'] }}{{ inputs['Mark'] }}"},
                "connectors": [{"to": "Return"}],
            },
            "Return": {
                "handler": "system_tree_return_v1",
                "parameters": {"Greeting": "{{ results['Compose']['output'] }}"},
            },
        },
        inputs=["Name", {"name": "Mark", "required": False, "default": "!"}],
        **extra,
    )


def welcome(handler: str = "routine_greet_v1", **parameters: str) -> dict[str, Any]:
    """A tree calling the greeting routine, then echoing what it returned."""
    return small_tree(
        "Welcome",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Greet Visitor"}]},
            "Greet Visitor": {
                "handler": handler,
                "parameters": parameters or {"Name": "{{ inputs['Visitor'] }}"},
                "connectors": [{"to": "Announce"}],
            },
            "Announce": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ results['Greet Visitor']['Greeting'] }}"},
            },
        },
    )


@pytest.fixture
def routines(database_url: str) -> Iterator[Engine]:
    with Engine(database_url) as engine:
        engine.load_tree(greet())
        engine.load_tree(welcome())
        yield engine


def child_of(engine: Engine, run_id: int, node: str = "Greet Visitor") -> int:
    task = engine.get_run(run_id).task(node)
    [link] = [c for c in engine.get_run(run_id).children if c.task_id == task.id]
    return link.run_id


def keyed_triggers(engine: Engine, prefix: str) -> list[Mapping[str, Any]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT run_id, task_id, action, status, idempotency_key FROM triggers"
                " WHERE idempotency_key LIKE :p ORDER BY id"
            ),
            {"p": prefix + "%"},
        )
        return [dict(row) for row in rows.mappings()]


def test_call_passes_inputs_and_returns_outputs_as_the_callers_results(routines: Engine) -> None:
    run_id = start_small(routines, "Welcome", results=VISITOR, source_id="REQ-7")
    run = routines.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    call = run.task("Greet Visitor")
    assert call.status is TaskStatus.CLOSED
    assert call.results == {"Greeting": "Hello, Ada!"}
    assert run.task("Announce").results == {"output": "Hello, Ada!"}
    [link] = run.children
    assert (link.task_id, link.tree_name, link.status) == (call.id, "Greet", RunStatus.COMPLETED)
    child = routines.get_run(link.run_id)
    assert (child.parent_run_id, child.parent_task_id) == (run_id, call.id)
    assert child.inputs == {"Name": "Ada", "Mark": "!"}  # the default filled in
    assert (child.source_name, child.source_group, child.source_id) == (
        "Tests",
        "Semantics",
        "REQ-7",
    )
    assert [t.name for t in child.tasks] == ["Start", "Compose", "Return"]
    assert child.task("Return").results == {"Greeting": "Hello, Ada!"}
    assert (run.parent_run_id, run.parent_task_id, child.children) == (None, None, ())


def test_caller_defers_with_a_token_until_the_child_returns(routines: Engine) -> None:
    trigger = routines.create_start(
        source_name="Tests", source_group="Semantics", tree_name="Welcome", results=VISITOR
    )
    assert routines.run_until_idle(max_triggers=1) == 1  # the caller's Root only
    run = routines.get_run(trigger.run_id)
    call = run.task("Greet Visitor")
    assert call.status is TaskStatus.DEFERRED
    assert len(call.token or "") == 40
    assert run.status is RunStatus.STARTED
    [link] = run.children
    assert link.status is RunStatus.STAGED
    [root] = keyed_triggers(routines, "call:")
    assert (root["run_id"], root["action"], root["idempotency_key"]) == (
        link.run_id,
        "Root",
        f"call:{call.id}",
    )
    routines.run_until_idle()
    assert routines.get_run(trigger.run_id).status is RunStatus.COMPLETED
    [returned] = keyed_triggers(routines, "return:")
    assert (returned["run_id"], returned["task_id"], returned["status"]) == (
        trigger.run_id,
        call.id,
        "Closed",
    )


def test_optional_input_given_overrides_its_default(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(greet())
        engine.load_tree(welcome(Name="Grace", Mark="?"))
        run = engine.get_run(start_small(engine, "Welcome"))
        assert run.task("Announce").results == {"output": "Hello, Grace?"}


def test_routines_call_routines(routines: Engine) -> None:
    routines.load_tree(
        routine(
            "routine_greet_twice_v1",
            "Greet Twice",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "First"}]},
                "First": {
                    "handler": "routine_greet_v1",
                    "parameters": {"Name": "{{ inputs['Name'] }}"},
                    "connectors": [{"to": "Second"}],
                },
                "Second": {
                    "handler": "routine_greet_v1",
                    "parameters": {"Name": "{{ results['First']['Greeting'] }}", "Mark": "."},
                    "connectors": [{"to": "Return"}],
                },
                "Return": {
                    "handler": "system_tree_return_v1",
                    "parameters": {"Greeting": "{{ results['Second']['Greeting'] }}"},
                },
            },
        )
    )
    routines.load_tree(welcome("routine_greet_twice_v1"))
    run = routines.get_run(start_small(routines, "Welcome", results=VISITOR))
    assert run.task("Announce").results == {"output": "Hello, Hello, Ada!."}
    middle = routines.get_run(child_of(routines, run.id))
    assert middle.tree_name == "Greet Twice"
    assert [c.tree_name for c in middle.children] == ["Greet", "Greet"]
    inner = routines.get_run(middle.children[1].run_id)
    assert (inner.parent_run_id, inner.inputs) == (middle.id, {"Name": "Hello, Ada!", "Mark": "."})
    with routines.database.read() as connection:
        depths = dict(connection.execute(sa.text("SELECT id, call_depth FROM runs")).all())
    assert (depths[run.id], depths[middle.id], depths[inner.id]) == (0, 1, 2)


def test_recursion_beyond_the_depth_limit_fails_one_call(database_url: str) -> None:
    forever = routine(
        "routine_forever_v1",
        "Forever",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Again"}]},
            "Again": {
                "handler": "routine_forever_v1",
                "parameters": {"Name": "{{ inputs['Name'] }}"},
                "connectors": [{"to": "Return"}],
            },
            "Return": {"handler": "system_tree_return_v1", "parameters": {"Greeting": "never"}},
        },
    )
    with Engine(database_url) as engine:
        engine.load_tree(forever)
        engine.load_tree(welcome("routine_forever_v1"))
        run_id = start_small(engine, "Welcome", results=VISITOR)
        with engine.database.read() as connection:
            deepest = connection.execute(sa.text("SELECT max(call_depth) FROM runs")).scalar()
        assert deepest == MAX_CALL_DEPTH
        [error] = engine.list_errors()
        assert error.type == ErrorType.HANDLER.value
        assert error.summary == (
            "Routine call 'Again' refused: calling 'routine_forever_v1' would nest routine runs"
            f" {MAX_CALL_DEPTH + 1} deep; the limit is {MAX_CALL_DEPTH} (a routine that calls"
            " itself without end?)"
        )
        assert engine.get_run(error.run_id or 0).status is RunStatus.FAILED
        assert engine.get_run(run_id).status is RunStatus.STARTED  # still waiting


class Flaky:
    """A handler that fails while ``failures`` is above zero."""

    def __init__(self) -> None:
        self.failures = 1

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError(f"cannot look up {context.parameters['name']!r}")
        return {"title": "Dr"}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [
            Handler(
                "tests_lookup_v1",
                self.execute,
                parameters=(Parameter("name", required=True),),
                results=("title",),
            )
        ]


@pytest.fixture
def flaky_routine(database_url: str) -> Iterator[tuple[Engine, Flaky]]:
    flaky = Flaky()
    titled = routine(
        "routine_titled_v1",
        "Titled",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Look Up"}]},
            "Look Up": {
                "handler": "tests_lookup_v1",
                "parameters": {"name": "{{ inputs['Name'] }}"},
                "connectors": [{"to": "Return"}],
            },
            "Return": {
                "handler": "system_tree_return_v1",
                "parameters": {"Greeting": "Hello, {{ inputs['Name'] }}"},
            },
        },
    )
    with Engine(database_url, plugins=[flaky]) as engine:
        engine.load_tree(titled)
        engine.load_tree(welcome("routine_titled_v1"))
        yield engine, flaky


@pytest.mark.parametrize("action", ["Retry Task", "Skip Task"])
def test_failing_routine_leaves_the_caller_deferred_until_resolved(
    flaky_routine: tuple[Engine, Flaky], action: str
) -> None:
    engine, _flaky = flaky_routine
    run_id = start_small(engine, "Welcome", results=VISITOR)
    child_id = child_of(engine, run_id)
    child = engine.get_run(child_id)
    assert child.status is RunStatus.FAILED
    [error] = child.errors
    assert (error.type, error.node) == (ErrorType.HANDLER.value, "Look Up")
    assert error.summary == "tests_lookup_v1 raised RuntimeError: cannot look up 'Ada'"
    run = engine.get_run(run_id)
    assert run.status is RunStatus.STARTED
    assert run.task("Greet Visitor").status is TaskStatus.DEFERRED
    assert run.errors == ()  # the error is the routine's, on its run

    engine.resolve_error(error.id, action)
    engine.run_until_idle()
    child = engine.get_run(child_id)
    assert child.status is RunStatus.COMPLETED
    assert child.errors[0].status == ErrorStatus.HANDLED.value
    looked_up = child.task("Look Up").results
    assert looked_up == ({"title": "Dr"} if action == "Retry Task" else {})
    run = engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Announce").results == {"output": "Hello, Ada"}


def test_a_routine_that_is_gone_is_a_missing_routine_error_retried_once_back(
    routines: Engine,
) -> None:
    routines.load_tree(greet(status="Inactive"))  # version 2 takes the routine away
    run_id = start_small(routines, "Welcome", results=VISITOR)
    run = routines.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.task("Greet Visitor").status is TaskStatus.FAILED
    assert run.children == ()
    [error] = run.errors
    assert error.type == ErrorType.MISSING_ROUTINE.value
    assert error.summary == (
        "Routine 'routine_greet_v1' called by node 'Greet Visitor' is not available: no active"
        " routine has that definition id"
    )

    routines.load_tree(greet("Welcome"))  # version 3: active again, and changed
    routines.resolve_error(error.id, "Retry Task")
    routines.run_until_idle()
    run = routines.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Announce").results == {"output": "Welcome, Ada!"}
    [link] = run.children
    assert routines.get_run(link.run_id).tree_version == 3


def test_a_newer_routine_version_that_provides_another_id_takes_the_old_one_away(
    routines: Engine,
) -> None:
    renamed = greet()
    renamed["definition_id"] = "routine_greet_v2"
    routines.load_tree(renamed)
    run = routines.get_run(start_small(routines, "Welcome", results=VISITOR))
    [error] = run.errors
    assert error.type == ErrorType.MISSING_ROUTINE.value
    # A caller naming the id nobody provides any more is refused at load, like a typo.
    with pytest.raises(TreeError, match="unknown handler 'routine_greet_v1'") as caught:
        routines.load_tree(welcome(Name="Grace") | {"name": "Other"})
    assert "known routines: routine_greet_v2" in str(caught.value)


def test_inputs_are_checked_again_against_the_routines_current_version(
    routines: Engine,
) -> None:
    stricter = greet()
    stricter["inputs"] = [*stricter["inputs"], "Title"]  # a new required input
    routines.load_tree(stricter)
    run = routines.get_run(start_small(routines, "Welcome", results=VISITOR))
    [error] = run.errors
    assert error.type == ErrorType.NODE_PARAMETER.value
    assert error.summary == (
        "Routine 'routine_greet_v1' requires the input 'Title', which node 'Greet Visitor'"
        " does not give"
    )
    assert run.children == ()


def test_an_input_the_routines_current_version_dropped_is_not_passed(routines: Engine) -> None:
    narrower = greet()
    narrower["inputs"] = ["Name"]  # Mark is gone; the caller still gives its default
    narrower["nodes"]["Compose"]["parameters"]["input"] = "Hello, {{ inputs['Name'] }}"
    routines.load_tree(narrower)
    run = routines.get_run(start_small(routines, "Welcome", results=VISITOR))
    # As in Kinetic: the call goes on, with the inputs the routine declares.
    assert (run.status, run.errors) == (RunStatus.COMPLETED, ())
    assert run.task("Announce").results == {"output": "Hello, Ada"}
    [link] = run.children
    assert routines.get_run(link.run_id).inputs == {"Name": "Ada"}


def test_only_the_first_return_of_a_child_completes_the_caller(database_url: str) -> None:
    two_returns = routine(
        "routine_race_v1",
        "Race",
        {
            "Start": {
                "handler": "system_start_v1",
                "connectors": [{"to": "Fast"}, {"to": "Slow"}],
            },
            "Fast": {"handler": "system_tree_return_v1", "parameters": {"Greeting": "fast"}},
            "Slow": {"handler": "system_tree_return_v1", "parameters": {"Greeting": "slow"}},
        },
    )
    with Engine(database_url) as engine:
        engine.load_tree(two_returns)
        engine.load_tree(welcome("routine_race_v1"))
        run = engine.get_run(start_small(engine, "Welcome", results=VISITOR))
        assert run.task("Announce").results == {"output": "fast"}
        child = engine.get_run(run.children[0].run_id)
        assert {t.name: t.status for t in child.tasks} == {
            "Start": TaskStatus.CLOSED,
            "Fast": TaskStatus.CLOSED,
            "Slow": TaskStatus.CLOSED,
        }
        assert len(keyed_triggers(engine, "return:")) == 1


def test_a_return_commits_exactly_once_when_its_trigger_is_taken_up_again(
    database_url: str,
) -> None:
    now = [1_800_000_000.0]
    with Engine(database_url, clock=lambda: now[0], lease_seconds=30) as engine:
        engine.load_tree(greet())
        engine.load_tree(welcome())
        trigger = engine.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Welcome", results=VISITOR
        )
        engine.run_until_idle(max_triggers=1)
        first = engine.runner.claim(10)  # the child's Root, by a worker that then stalls
        now[0] += 60  # its lease runs out; another worker takes the trigger up
        second = engine.runner.claim(10)
        assert [t.id for t in second.triggers] == [t.id for t in first.triggers]
        assert engine.runner.process(second) == 1
        assert engine.runner.process(first) == 0  # fenced out: its commit is refused
        engine.run_until_idle()
        assert len(keyed_triggers(engine, "return:")) == 1
        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert [t.name for t in run.tasks] == ["Start", "Greet Visitor", "Announce"]


def test_a_routine_started_on_its_own_runs_to_its_return(routines: Engine) -> None:
    trigger = routines.create_start(
        source_name="-",
        source_group="-",
        tree_name="Greet",
        results='<results><result name="Name">Lin</result><result name="Mark">!</result></results>',
    )
    routines.run_until_idle()
    run = routines.get_run(trigger.run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Return").results == {"Greeting": "Hello, Lin!"}
    assert keyed_triggers(routines, "return:") == []


def test_an_external_complete_of_the_callers_token_wins_over_the_return(
    routines: Engine,
) -> None:
    trigger = routines.create_start(
        source_name="Tests", source_group="Semantics", tree_name="Welcome", results=VISITOR
    )
    routines.run_until_idle(max_triggers=1)
    token = routines.get_run(trigger.run_id).task("Greet Visitor").token or ""
    routines.create_deferred(
        token=token, results='<results><result name="Greeting">Hi</result></results>'
    )
    routines.run_until_idle()
    run = routines.get_run(trigger.run_id)
    assert run.task("Announce").results == {"output": "Hi"}
    assert [t.name for t in run.tasks].count("Announce") == 1
    assert routines.get_run(run.children[0].run_id).status is RunStatus.COMPLETED
    [returned] = keyed_triggers(routines, "return:")
    assert returned["status"] == "Closed"  # closed without effect


def test_many_calls_on_worker_threads_each_return_once(routines: Engine) -> None:
    run_ids = [
        routines.create_start(
            source_name="Tests",
            source_group="Semantics",
            tree_name="Welcome",
            results=f'<results><result name="Visitor">V{n}</result></results>',
        ).run_id
        for n in range(20)
    ]
    routines.start(workers=4)
    try:
        wait_for(lambda: all(routines.get_run(r).status is RunStatus.COMPLETED for r in run_ids))
    finally:
        routines.stop()
    for n, run_id in enumerate(run_ids):
        run = routines.get_run(run_id)
        assert run.task("Announce").results == {"output": f"Hello, V{n}!"}
        assert len(run.children) == 1
    assert len(keyed_triggers(routines, "return:")) == 20


def _greet_each(body_handler: str = "routine_greet_v1") -> dict[str, Any]:
    """A loop over people, calling the routine once per person, then a summary of the calls."""
    summary = "{% for index, r in iterations['Greet'].items() %}{{ index }}={{ r['Greeting'] }};"
    return small_tree(
        "Greet Each",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
            "Each": {
                "handler": "system_loop_head_v1",
                "parameters": {
                    "data_source": "{{ inputs['People'] }}",
                    "loop_path": "//person",
                    "var_name": "person",
                },
                "connectors": [{"to": "Done"}, {"to": "Greet"}],
            },
            "Greet": {
                "handler": body_handler,
                "parameters": {"Name": "{{ person }}"},
                "connectors": [{"to": "Done"}],
            },
            "Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "After"}]},
            "After": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": summary + "{% endfor %}"},
            },
        },
    )


PEOPLE = write_results(
    {"People": "<people><person>Ada</person><person>Grace</person><person>Lin</person></people>"}
)


def test_a_routine_called_inside_a_loop_runs_once_per_iteration(routines: Engine) -> None:
    routines.load_tree(_greet_each())
    run = routines.get_run(start_small(routines, "Greet Each", results=PEOPLE))
    assert run.status is RunStatus.COMPLETED
    calls = [t for t in run.tasks if t.name == "Greet"]
    assert [(t.loop_index, t.status, dict(t.results)) for t in calls] == [
        ("/0", TaskStatus.CLOSED, {"Greeting": "Hello, Ada!"}),
        ("/1", TaskStatus.CLOSED, {"Greeting": "Hello, Grace!"}),
        ("/2", TaskStatus.CLOSED, {"Greeting": "Hello, Lin!"}),
    ]
    assert [c.task_id for c in run.children] == [t.id for t in calls]
    children = [routines.get_run(c.run_id) for c in run.children]
    assert [c.inputs["Name"] for c in children] == ["Ada", "Grace", "Lin"]
    assert {c.parent_run_id for c in children} == {run.id}
    assert run.task("After").results == {
        "output": "/0=Hello, Ada!;/1=Hello, Grace!;/2=Hello, Lin!;"
    }


def test_a_loops_tail_waits_for_every_iterations_routine_to_return(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(_deferring_greet())
        engine.load_tree(_greet_each())
        run_id = start_small(engine, "Greet Each", results=PEOPLE)
        children = [c.run_id for c in engine.get_run(run_id).children]
        assert len(children) == 3
        for done, child in enumerate(reversed(children), start=1):
            tail = [t.status for t in engine.get_run(run_id).tasks if t.name == "Done"]
            assert TaskStatus.CLOSED not in tail  # the tail has not fired yet
            engine.create_deferred(token=engine.get_run(child).task("Review").token or "")
            engine.run_until_idle()
            statuses = [t.status for t in engine.get_run(run_id).tasks if t.name == "Greet"]
            assert statuses.count(TaskStatus.CLOSED) == done
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert [t.name for t in run.tasks].count("Done") == 1
        assert run.task("After").results["output"].startswith("/0=Hello, Ada!;")


def _deferring_greet() -> dict[str, Any]:
    """The greeting routine with a review before it returns, so its runs can be held open."""
    tree = greet()
    tree["nodes"]["Compose"]["connectors"] = [{"to": "Review"}]
    tree["nodes"]["Review"] = {
        "handler": "utilities_defer_v1",
        "defers": True,
        "connectors": [{"to": "Return"}],
    }
    return tree
