"""Loops (system_loop_head_v1 / system_loop_tail_v1) on SQLite and PostgreSQL.

One Iteration trigger per element, each with its own loop index; per-iteration results inside,
``iterations`` outside; the tail fires exactly once; bad data is a Node Parameter Error of the
head; the head/tail pair is checked at load.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine, ErrorType, RunStatus, TaskStatus, TreeError
from engine.records import Run
from engine.results_xml import write_results as _results
from engine.store.tables import tasks
from engine.tree.picture import run_dot

from .conftest import TREES
from .support import run_treeflow, small_tree, start_small, wait_for

PEOPLE_XML = (
    "<people><person id='p1'>Ada</person><person id='p2'>Grace</person>"
    "<person id='p3'>Edsger</person></people>"
)


def _loop_tree(
    name: str,
    source: str,
    path: str,
    *,
    tail: Mapping[str, str] | None = None,
    body: Mapping[str, object] | None = None,
    var_name: str = "item",
) -> dict[str, object]:
    """Start -> Each (head) -> Body -> Done (tail) -> After; Each -> Done directly."""
    body_node = body or {
        "handler": "utilities_echo_v1",
        "parameters": {
            "input": "{{ item }} #{{ results['Each']['Index'] }} at {{ task.loop_index }}"
        },
    }
    return small_tree(
        name,
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
            "Each": {
                "handler": "system_loop_head_v1",
                "parameters": {"data_source": source, "loop_path": path, "var_name": var_name},
                "connectors": [{"to": "Done"}, {"to": "Body"}],
            },
            "Body": {**body_node, "connectors": [{"to": "Done"}]},
            "Done": {
                "handler": "system_loop_tail_v1",
                "parameters": dict(tail or {"type": "All"}),
                "connectors": [{"to": "After"}],
            },
            "After": {
                "handler": "utilities_echo_v1",
                "parameters": {
                    "input": "{% for index, r in iterations['Body'].items() %}"
                    "{{ index }}={{ r['output'] if 'output' in r else 'deferred' }};"
                    "{% endfor %}"
                },
            },
        },
    )


def _run(engine: Engine, tree: dict[str, object], **kwargs: object) -> Run:
    engine.load_tree(tree)
    run_id = start_small(engine, str(tree["name"]), **kwargs)
    return engine.get_run(run_id)


def _tasks(run: Run, name: str) -> dict[str, TaskStatus]:
    return {t.loop_index: t.status for t in run.tasks if t.name == name}


def _triggers(engine: Engine, run_id: int) -> Counter[tuple[str, str]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT action, status FROM triggers WHERE run_id = :r"), {"r": run_id}
        )
        return Counter((row.action, row.status) for row in rows)


def _arrived(engine: Engine, run_id: int, node: str) -> list[str]:
    """The iterations that reached a tail (a column the run's records do not show)."""
    with engine.database.read() as connection:
        statement = sa.select(tasks.c.arrived).where(tasks.c.run_id == run_id, tasks.c.node == node)
        [arrived] = connection.execute(statement).scalars()
        return list(arrived)


# -- iterations ------------------------------------------------------------------------------


def test_xml_loop_runs_the_body_once_per_element_under_its_own_loop_index(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("People", PEOPLE_XML, "//person/text()"))
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.errors == ()
        assert run.task("Each").results == {"Count": "3", "Variable": "item"}
        assert [run.task("Each", f"/{i}").results for i in range(3)] == [
            {"Value": "Ada", "Index": "0"},
            {"Value": "Grace", "Index": "1"},
            {"Value": "Edsger", "Index": "2"},
        ]
        assert run.task("Body", "/1").results == {"output": "Grace #1 at /1"}
        assert _tasks(run, "Body") == {f"/{i}": TaskStatus.CLOSED for i in range(3)}
        with pytest.raises(KeyError):
            run.task("Body")  # no task outside the loop
        assert [t.loop_index for t in run.tasks if t.name == "Done"] == ["/"]
        assert run.task("Done").status is TaskStatus.CLOSED
        assert run.task("After").results == {
            "output": "/0=Ada #0 at /0;/1=Grace #1 at /1;/2=Edsger #2 at /2;"
        }
        assert _triggers(engine, run.id) == {("Root", "Closed"): 1, ("Iteration", "Closed"): 3}


def test_xml_elements_are_their_text_or_serialisation_and_attributes_their_text(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("Elements", PEOPLE_XML, "//person"))
        assert run.task("Each", "/0").results["Value"] == '<person id="p1">Ada</person>'
        run = _run(engine, _loop_tree("Items", "<list><item>a</item><item/></list>", "//item"))
        assert [run.task("Each", f"/{i}").results["Value"] for i in range(2)] == ["a", ""]
        run = _run(engine, _loop_tree("Attributes", PEOPLE_XML, "//person/@id"))
        assert [run.task("Body", f"/{i}").results["output"][:2] for i in range(3)] == [
            "p1",
            "p2",
            "p3",
        ]


def test_json_loop_with_a_jsonpath(database_url: str) -> None:
    people = json.dumps({"people": [{"name": "Ada", "langs": ["x"]}, {"name": "Grace"}]})
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("Names", people, "$.people[*].name"))
        assert run.status is RunStatus.COMPLETED, run.errors
        assert [run.task("Body", f"/{i}").results["output"] for i in range(2)] == [
            "Ada #0 at /0",
            "Grace #1 at /1",
        ]
        run = _run(engine, _loop_tree("Objects", people, "$.people[*]"))
        assert run.task("Each", "/0").results["Value"] == '{"name":"Ada","langs":["x"]}'
        run = _run(engine, _loop_tree("Scalars", "[1, true, null]", "$[*]"))
        assert [run.task("Each", f"/{i}").results["Value"] for i in range(3)] == [
            "1",
            "true",
            "null",
        ]


def test_nested_loops_give_nested_loop_indexes(database_url: str) -> None:
    tree = small_tree(
        "Nested",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Rows"}]},
            "Rows": {
                "handler": "system_loop_head_v1",
                "parameters": {"data_source": "[[1, 2], [3, 4, 5]]", "loop_path": "$[*]"},
                "connectors": [{"to": "Rows Done"}, {"to": "Cells"}],
            },
            "Cells": {
                "handler": "system_loop_head_v1",
                "parameters": {
                    "data_source": "{{ results['Rows']['Value'] }}",
                    "loop_path": "$[*]",
                    "var_name": "cell",
                },
                "connectors": [{"to": "Cells Done"}, {"to": "Cell"}],
            },
            "Cell": {
                "handler": "utilities_echo_v1",
                "parameters": {
                    "input": "{{ results['Rows']['Index'] }}.{{ results['Cells']['Index'] }}"
                    "={{ cell }}"
                },
                "connectors": [{"to": "Cells Done"}],
            },
            "Cells Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "Row"}]},
            "Row": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "row {{ results['Rows']['Value'] }}"},
                "connectors": [{"to": "Rows Done"}],
            },
            "Rows Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "After"}]},
            "After": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ iterations['Cell'] | length }} cells"},
            },
        },
    )
    with Engine(database_url) as engine:
        run = _run(engine, tree)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert sorted(_tasks(run, "Cell")) == ["/0/0", "/0/1", "/1/0", "/1/1", "/1/2"]
        assert run.task("Cell", "/1/2").results == {"output": "1.2=5"}
        assert run.task("Cells", "/1").results == {"Count": "3", "Variable": "cell"}
        assert run.task("Cells", "/1/0").results == {"Value": "3", "Index": "0"}
        assert _tasks(run, "Cells Done") == {"/0": TaskStatus.CLOSED, "/1": TaskStatus.CLOSED}
        assert run.task("Row", "/0").results == {"output": "row [1,2]"}
        assert _tasks(run, "Rows Done") == {"/": TaskStatus.CLOSED}
        assert run.task("After").results == {"output": "5 cells"}
        assert _triggers(engine, run.id)[("Iteration", "Closed")] == 2 + 5


# -- the tail, and deferrals inside iterations -------------------------------------------------

APPROVE = {"handler": "utilities_defer_v1", "defers": True}


@pytest.mark.parametrize(
    ("tail", "fires_after"),
    [({"type": "All"}, 3), ({"type": "Any"}, 1), ({"type": "Some", "number": "2"}, 2)],
    ids=["all", "any", "some-2"],
)
def test_tail_fires_exactly_once_when_its_type_is_met(
    database_url: str, tail: dict[str, str], fires_after: int
) -> None:
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("Approvals", PEOPLE_XML, "//person", tail=tail, body=APPROVE))
        assert _tasks(run, "Body") == {f"/{i}": TaskStatus.DEFERRED for i in range(3)}
        tokens = [run.task("Body", f"/{i}").token for i in (2, 0, 1)]
        assert len(set(tokens)) == 3
        for completed, token in enumerate(tokens, start=1):
            engine.create_deferred(token=str(token), action="Complete")
            engine.run_until_idle()
            run = engine.get_run(run.id)
            after = [t for t in run.tasks if t.name == "After"]
            assert len(after) == (1 if completed >= fires_after else 0), completed
        assert run.status is RunStatus.COMPLETED
        assert run.task("Done").status is TaskStatus.CLOSED
        # arrivals after the tail fired are recorded, and fire nothing
        assert sorted(_arrived(engine, run.id, "Done")) == ["/0", "/1", "/2"]
        assert [t.name for t in run.tasks].count("Done") == 1


def test_completing_one_iterations_deferral_continues_that_iteration_only(
    database_url: str,
) -> None:
    tree = _loop_tree("Deferred Each", PEOPLE_XML, "//person/text()", body=APPROVE)
    tree["nodes"]["Body"]["connectors"] = [{"to": "Thank"}]  # type: ignore[index]
    tree["nodes"]["Thank"] = {  # type: ignore[index]
        "handler": "utilities_echo_v1",
        "parameters": {"input": "thanks {{ item }}: {{ results['Body']['Answer'] }}"},
        "connectors": [{"to": "Done"}],
    }
    with Engine(database_url) as engine:
        run = _run(engine, tree)
        token = run.task("Body", "/1").token
        engine.create_deferred(
            token=str(token),
            action="Complete",
            results='<results><result name="Answer">yes</result></results>',
        )
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert _tasks(run, "Body") == {
            "/0": TaskStatus.DEFERRED,
            "/1": TaskStatus.CLOSED,
            "/2": TaskStatus.DEFERRED,
        }
        assert _tasks(run, "Thank") == {"/1": TaskStatus.CLOSED}
        assert run.task("Thank", "/1").results == {"output": "thanks Grace: yes"}
        assert run.task("Done").status is TaskStatus.NEW
        assert _arrived(engine, run.id, "Done") == ["/1"]
        assert run.status is RunStatus.STARTED


def test_a_junction_inside_a_loop_fires_once_per_iteration(database_url: str) -> None:
    tree = small_tree(
        "Junction Each",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
            "Each": {
                "handler": "system_loop_head_v1",
                "parameters": {"data_source": '["a", "b"]', "loop_path": "$[*]"},
                "connectors": [{"to": "Done"}, {"to": "Check"}, {"to": "Approve"}],
            },
            "Check": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "checked {{ results['Each']['Value'] }}"},
                "connectors": [{"to": "Both"}],
            },
            "Approve": {**APPROVE, "connectors": [{"to": "Both"}]},
            "Both": {"handler": "system_junction_v1", "connectors": [{"to": "Done"}]},
            "Done": {"handler": "system_loop_tail_v1", "connectors": [{"to": "After"}]},
            "After": {"handler": "system_noop_v1"},
        },
    )
    with Engine(database_url) as engine:
        run = _run(engine, tree)
        assert _tasks(run, "Both") == {"/0": TaskStatus.NEW, "/1": TaskStatus.NEW}
        engine.create_deferred(token=str(run.task("Approve", "/1").token), action="Complete")
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert _tasks(run, "Both") == {"/0": TaskStatus.NEW, "/1": TaskStatus.CLOSED}
        assert run.task("Done").status is TaskStatus.NEW
        engine.create_deferred(token=str(run.task("Approve", "/0").token), action="Complete")
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert _tasks(run, "Both") == {"/0": TaskStatus.CLOSED, "/1": TaskStatus.CLOSED}
        assert _tasks(run, "After") == {"/": TaskStatus.CLOSED}
        assert run.status is RunStatus.COMPLETED


# -- empty and bad data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path"),
    [("<people/>", "//person"), ("", "//person"), ("[]", "$[*]"), ('{"a": []}', "$.a[*]")],
    ids=["xml-no-match", "empty-text", "json-empty-list", "json-empty-match"],
)
def test_an_empty_source_runs_no_iteration_and_the_tail_fires(
    database_url: str, source: str, path: str
) -> None:
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("Nobody", source, path))
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("Each").results == {"Count": "0", "Variable": "item"}
        assert _tasks(run, "Body") == {}
        assert run.task("Done").status is TaskStatus.CLOSED
        assert run.task("After").results == {"output": ""}
        assert ("Iteration", "Closed") not in _triggers(engine, run.id)


def _parallel_loop_tree(name: str, source: str, path: str) -> dict[str, object]:
    """The loop on one branch, an echo on another: a bad loop must not stop the other."""
    tree = _loop_tree(name, "{{ inputs['Source'] }}", "{{ inputs['Path'] }}")
    tree["nodes"]["Start"]["connectors"] = [{"to": "Each"}, {"to": "Other"}]  # type: ignore[index]
    tree["nodes"]["Other"] = {  # type: ignore[index]
        "handler": "utilities_echo_v1",
        "parameters": {"input": "still here"},
    }
    return tree


def _inputs(source: str, path: str) -> str:
    return _results({"Source": source, "Path": path})


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [
        ("<people><person>Ada</people>", "//person", "data_source is not well-formed XML"),
        (PEOPLE_XML, "//person[", "loop_path '//person[' is not an XPath"),
        (PEOPLE_XML, "count(//person)", "loop_path 'count(//person)' gives float 3.0"),
        (PEOPLE_XML, "nosuch()", "loop_path 'nosuch()' cannot be evaluated"),
        ("[1, 2", "$[*]", "data_source is not well-formed JSON"),
        ("[1, 2]", "$[[", "loop_path '$[[' is not a JSONPath"),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "//x", "data_source is not well-formed"),
    ],
    ids=[
        "malformed-xml",
        "bad-xpath",
        "xpath-not-nodes",
        "xpath-unknown-function",
        "malformed-json",
        "bad-jsonpath",
        "xml-with-doctype",
    ],
)
def test_bad_data_is_a_node_parameter_error_of_the_head_and_only_its_branch_stops(
    database_url: str, source: str, path: str, message: str
) -> None:
    with Engine(database_url) as engine:
        run = _run(engine, _parallel_loop_tree("Bad", source, path), results=_inputs(source, path))
        assert run.status is RunStatus.FAILED
        [error] = run.errors
        assert error.type == ErrorType.NODE_PARAMETER
        assert (error.node, error.loop_index) == ("Each", "/")
        assert error.summary.startswith(f"Loop head 'Each': {message}"), error.summary
        assert run.task("Each").status is TaskStatus.FAILED
        assert run.task("Other").results == {"output": "still here"}
        assert {t.name for t in run.tasks} == {"Start", "Each", "Other"}
        assert _triggers(engine, run.id) == {("Root", "Closed"): 1}


def test_skipping_a_failed_head_runs_no_iteration_and_the_run_goes_on(database_url: str) -> None:
    with Engine(database_url) as engine:
        tree = _parallel_loop_tree("Skip", "", "")
        run = _run(engine, tree, results=_inputs("<broken", "//x"))
        [error] = run.errors
        engine.resolve_error(error.id, "Skip Task")
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Each").results == {"Count": "0", "Variable": ""}
        assert run.task("After").status is TaskStatus.CLOSED


def test_skipping_a_failed_node_inside_an_iteration_continues_that_iteration(
    database_url: str,
) -> None:
    body = {"handler": "utilities_echo_v1", "parameters": {"input": "{{ inputs['Missing'] }}"}}
    with Engine(database_url) as engine:
        run = _run(engine, _loop_tree("Skip Inside", "[1, 2]", "$[*]", body=body))
        assert sorted((e.node, e.loop_index) for e in run.errors) == [
            ("Body", "/0"),
            ("Body", "/1"),
        ]
        first = next(e for e in run.errors if e.loop_index == "/1")
        engine.resolve_error(first.id, "Skip Task")
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert _tasks(run, "Body") == {"/0": TaskStatus.FAILED, "/1": TaskStatus.CLOSED}
        assert _arrived(engine, run.id, "Done") == ["/1"]
        second = next(e for e in run.errors if e.loop_index == "/0")
        engine.resolve_error(second.id, "Skip Task")
        engine.run_until_idle()
        run = engine.get_run(run.id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("After").status is TaskStatus.CLOSED


def test_a_loop_with_nothing_inside_reaches_its_tail_once_per_iteration(
    database_url: str,
) -> None:
    tree = _loop_tree("Empty Body", "[1, 2, 3]", "$[*]")
    nodes = tree["nodes"]
    del nodes["Body"]  # type: ignore[attr-defined]
    nodes["Each"]["connectors"] = [{"to": "Done"}]  # type: ignore[index]
    nodes["After"]["parameters"] = {"input": "{{ results['Each']['Count'] }}"}  # type: ignore[index]
    with Engine(database_url) as engine:
        run = _run(engine, tree)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert sorted(_arrived(engine, run.id, "Done")) == ["/0", "/1", "/2"]
        assert run.task("After").results == {"output": "3"}


def test_a_bad_some_number_fails_the_tail(database_url: str) -> None:
    tail = {"type": "Some", "number": "{{ 'x' }}"}
    tree = _loop_tree("Bad Some", PEOPLE_XML, "//person", tail=tail)
    with Engine(database_url) as engine:
        run = _run(engine, tree)
        [error] = run.errors
        assert (error.node, error.type) == ("Done", ErrorType.NODE_PARAMETER)
        assert "number 'x' is not a whole number" in error.summary
        assert run.status is RunStatus.FAILED


# -- several workers -------------------------------------------------------------------------


def test_iterations_processed_by_several_workers_close_every_task_exactly_once(
    database_url: str,
) -> None:
    items = json.dumps(list(range(25)))
    with Engine(database_url) as engine:
        engine.load_tree(_loop_tree("Many", items, "$[*]"))
        runs = [
            engine.create_start(
                source_name="Tests", source_group="Semantics", tree_name="Many", source_id=str(i)
            ).run_id
            for i in range(4)
        ]
        engine.start(workers=4)
        wait_for(lambda: all(engine.get_run(r).status is RunStatus.COMPLETED for r in runs))
        engine.stop()
        for run_id in runs:
            run = engine.get_run(run_id)
            bodies = Counter(t.loop_index for t in run.tasks if t.name == "Body")
            assert bodies == Counter(f"/{i}" for i in range(25))
            assert all(t.status is TaskStatus.CLOSED for t in run.tasks)
            assert [t.name for t in run.tasks].count("After") == 1
            assert _triggers(engine, run_id) == {
                ("Root", "Closed"): 1,
                ("Iteration", "Closed"): 25,
            }


def test_a_loop_run_draws_with_each_node_once(engine: Engine) -> None:
    run = _run(engine, _loop_tree("Drawn", PEOPLE_XML, "//person"))
    dot = run_dot(engine.tree_of_run(run), run)
    assert dot.count("\tBody [") == 1, dot


def test_the_example_tree_runs_from_the_cli_with_loop_indexes_and_a_graph(
    database_url: str, tmp_path: Path
) -> None:
    attendees = '<attendees><attendee email="ada@x.org"/><attendee email="bo@x.org"/></attendees>'
    results = tmp_path / "results.xml"
    results.write_text(_results({"Attendees": attendees}), encoding="utf-8")
    flags = ("--database", database_url, "--trees", str(TREES))
    ran = run_treeflow(
        "run", "Notify Attendees", "--source-id", "REG-7", "--results", f"@{results}", *flags,
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "Completed" in ran.stdout.splitlines()[0]
    rows = [line.split("│")[1:4] for line in ran.stdout.splitlines() if "Send Invitation" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["Send Invitation", "/0", "Closed"],
        ["Send Invitation", "/1", "Closed"],
    ]
    shown = run_treeflow("runs", "show", "1", "--graph", "run.dot", *flags, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    dot = (tmp_path / "run.dot").read_text(encoding="utf-8")
    assert "Closed x2" in dot and "Closed x3" in dot


# -- a Kinetic export with a loop: convert, validate, run -------------------------------------

KINETIC_LOOP = Path(__file__).resolve().parent / "fixtures" / "kinetic" / "loop-tree.xml"


def test_the_kinetic_loop_export_converts_validates_and_runs(
    database_url: str, tmp_path: Path
) -> None:
    converted = run_treeflow("import-kinetic", str(KINETIC_LOOP), "-o", "loop.yaml", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    assert converted.stderr.strip().endswith("(6 nodes), 0 kept as written")
    validated = run_treeflow("validate", "loop.yaml", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    with Engine(database_url) as engine:
        tree = engine.load_tree(tmp_path / "loop.yaml")
        assert tree.loops["Email Address Loop Start"].tail == "Email Address Loop End"
        addresses = "<list><item>ada@example.com</item><item>bo@example.com</item></list>"
        trigger = engine.create_start(
            source_name="Kinetic Request",
            source_group="Notifications > Email",
            tree_name="Email Each Address",
            source_id="REQ-9",
            results=_results({"Addresses": addresses}),
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert [run.task("Send Email", f"/{i}").results["output"] for i in range(2)] == [
            "mail to ada@example.com for REQ-9",
            "mail to bo@example.com for REQ-9",
        ]
        assert run.task("Summary").results == {"output": "sent for REQ-9"}


# -- validation ------------------------------------------------------------------------------

LOOP_YAML = """\
source: Tests
group: Semantics
name: Checked
nodes:
  Start:
    handler: system_start_v1
    connectors: [{to: Each}]
  Each:
    handler: system_loop_head_v1
    parameters: {data_source: "<a/>", loop_path: //b}
    connectors: [{to: Done}, {to: Body}]
  Body:
    handler: system_noop_v1
    connectors: [{to: Done}]
  Done:
    handler: system_loop_tail_v1
"""


@pytest.fixture
def write_tree(tmp_path: Path) -> Iterator[object]:
    def check(text: str) -> list[str]:
        path = tmp_path / "checked.yaml"
        path.write_text(text, encoding="utf-8")
        with (
            Engine(f"sqlite:///{tmp_path / 'v.db'}") as engine,
            pytest.raises(TreeError) as refused,
        ):
            engine.load_tree(path)
        for problem in refused.value.problems:
            assert problem.file == str(path)
        return [f"{p.node}@{p.line}: {p.message}" for p in refused.value.problems]

    yield check


def test_the_example_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(LOOP_YAML, encoding="utf-8")
    with Engine(f"sqlite:///{tmp_path / 'v.db'}") as engine:
        tree = engine.load_tree(path)
    pair = tree.loops["Each"]
    assert (pair.tail, pair.body) == ("Done", frozenset({"Body"}))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "connectors: [{to: Done}, {to: Body}]",
            "connectors: [{to: Done, condition: 'true'}, {to: Body}]",
            "Each@8: the connector to loop tail 'Done' pairs the two and is not followed",
        ),
        (
            "    connectors: [{to: Done}]\n",
            "    connectors: [{to: Done}, {to: Each}]\n",
            "Body@14: connector to 'Each' closes a cycle: Each -> Body -> Each",
        ),
        (
            "    connectors: [{to: Each}]\n",
            "    connectors: [{to: Each}, {to: Body}]\n",
            "Start@5: connector to 'Body' enters loop 'Each' from outside it",
        ),
        (
            "    connectors: [{to: Each}]\n",
            "    connectors: [{to: Each}, {to: Done}]\n",
            "Start@5: connector to loop tail 'Done' from outside its loop 'Each'",
        ),
        (
            "loop_path: //b}",
            "loop_path: '//b['}",
            "Each@10: loop_path '//b[' is not an XPath",
        ),
        (
            "loop_path: //b}",
            "loop_path: //b, var_name: results}",
            "Each@10: var_name 'results' would hide the template name 'results'",
        ),
        (
            "    handler: system_loop_tail_v1\n",
            "    handler: system_loop_tail_v1\n    parameters: {type: Some, number: '0'}\n",
            "Done@17: a Some loop tail needs 'number', a whole number of 1 or more, not '0'",
        ),
    ],
    ids=[
        "condition-on-the-pairing-connector",
        "cycle-back-to-head",
        "body-entered-from-outside",
        "tail-reached-from-outside",
        "constant-bad-xpath",
        "var-name-hides-results",
        "some-zero",
    ],
)
def test_bad_loops_are_refused_naming_file_node_and_line(
    write_tree: object, old: str, new: str, expected: str
) -> None:
    assert LOOP_YAML.count(old) == 1
    problems = write_tree(LOOP_YAML.replace(old, new))  # type: ignore[operator]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_head_not_connected_directly_to_its_tail_is_refused(write_tree: object) -> None:
    text = LOOP_YAML.replace("connectors: [{to: Done}, {to: Body}]", "connectors: [{to: Body}]")
    assert write_tree(text) == [  # type: ignore[operator]
        "Each@8: a loop head must connect directly to its loop tail; it connects to none",
        "Done@15: a loop tail needs a loop head connected directly to it; none is",
    ]
