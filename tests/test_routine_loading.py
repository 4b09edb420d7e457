"""Loading routines and their callers: what is checked, and how each problem is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.files import load_tree_files
from engine.tree.loader import load_tree_data, load_tree_text
from engine.tree.routines import signature_of

from .support import run_treeflow
from .test_routines import greet, routine, welcome

GREET = signature_of(greet())
assert GREET is not None


def problems(tree: dict[str, Any], **routines: Any) -> list[tuple[str | None, str]]:
    """The problems of ``tree`` loaded strictly (what Kinetic accepts is refused too)."""
    known = {"routine_greet_v1": GREET, **routines}
    with pytest.raises(TreeError) as caught:
        load_tree_data(
            tree,
            registry=HandlerRegistry(),
            expressions=Expressions(),
            routines=known,
            strict=True,
        )
    return [(p.node, p.message) for p in caught.value.problems]


def with_return(**parameters: str) -> dict[str, Any]:
    tree = greet()
    tree["nodes"]["Return"]["parameters"] = parameters
    return tree


def header(**changes: Any) -> dict[str, Any]:
    tree = greet()
    tree.update(changes)
    return tree


PLAIN_WITH_RETURN = welcome()
PLAIN_WITH_RETURN["nodes"]["Announce"] = {
    "handler": "system_tree_return_v1",
    "parameters": {"Greeting": "hi"},
}
NO_RETURN = greet()
NO_RETURN["nodes"]["Return"] = {"handler": "system_noop_v1"}
CALL_NOT_DEFERRING = welcome()
CALL_NOT_DEFERRING["nodes"]["Greet Visitor"]["defers"] = False


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (
            welcome(Name="Ada", Nickname="Addie"),
            (
                "Greet Visitor",
                "parameter 'Nickname' is not an input of routine 'routine_greet_v1' (its inputs:"
                " Name, Mark): it is not passed",
            ),
        ),
        (
            welcome(Mark="?"),
            ("Greet Visitor", "required parameter 'Name' of 'routine_greet_v1' is missing"),
        ),
        (
            welcome("routine_gret_v1"),
            (
                "Greet Visitor",
                "unknown handler 'routine_gret_v1'; known handlers: http_request_v1,",
            ),
        ),
        (
            CALL_NOT_DEFERRING,
            ("Greet Visitor", "a routine call always defers, not 'defers: False'"),
        ),
        (
            with_return(Greeting="hi", Farewell="bye"),
            (
                "Return",
                "parameter 'Farewell' is not declared by 'system_tree_return_v1'"
                " (declared: Greeting)",
            ),
        ),
        (
            with_return(),
            ("Return", "required parameter 'Greeting' of 'system_tree_return_v1' is missing"),
        ),
        (
            PLAIN_WITH_RETURN,
            ("Announce", "system_tree_return_v1 ends a routine; this tree is not one"),
        ),
        (
            NO_RETURN,
            (None, "a routine without a system_tree_return_v1 node returns nothing"),
        ),
        (
            header(definition_id="utilities_echo_v1"),
            (None, "definition id 'utilities_echo_v1' is a handler's id: a routine needs its own"),
        ),
        (
            header(definition_id="Greet Routine"),
            (None, "a routine needs a 'definition_id' in lower_snake_case such as"),
        ),
        (header(type="flow"), (None, "type 'flow' is not 'tree' or 'routine'")),
        (
            welcome() | {"inputs": ["Name"]},
            (None, "'inputs' is only for a routine: add 'type: routine'"),
        ),
        (header(inputs=["Name", "Name"]), (None, "input 'Name' is declared twice")),
        (header(outputs="Greeting"), (None, "'outputs' must be a list of names, not str")),
        (
            header(inputs=[{"name": "Name", "required": "yes"}]),
            (None, "'required' must be true or false, not 'yes'"),
        ),
    ],
    ids=[
        "unknown input",
        "missing required input",
        "unknown routine",
        "call with defers false",
        "unknown output",
        "missing output",
        "return outside a routine",
        "routine without return",
        "id of a handler",
        "malformed id",
        "unknown type",
        "routine keys on a tree",
        "input twice",
        "outputs not a list",
        "required not a boolean",
    ],
)
def test_bad_routine_or_call_is_refused_naming_node_and_parameter(
    tree: dict[str, Any], expected: tuple[str | None, str]
) -> None:
    [(node, message)] = problems(tree)
    assert node == expected[0]
    assert message.startswith(expected[1]), message


def test_unknown_routine_lists_the_known_routines() -> None:
    [(_, message)] = problems(welcome("routine_gret_v1"))
    assert message.endswith("; known routines: routine_greet_v1; did you mean 'routine_greet_v1'?")


def test_an_undeclared_input_is_a_warning_with_file_and_line_and_is_not_passed() -> None:
    text = (
        "source: Tests\ngroup: Semantics\nname: Welcome\nnodes:\n"
        "  Start:\n    handler: system_start_v1\n    connectors:\n      - to: Call\n"
        "  Call:\n    handler: routine_greet_v1\n    parameters:\n"
        "      Name: Ada\n      Nickname: Addie\n"
    )
    expected = (
        "welcome.yaml:13: node 'Call': parameter 'Nickname' is not an input of routine"
        " 'routine_greet_v1' (its inputs: Name, Mark): it is not passed"
    )
    options: dict[str, Any] = {
        "file": "welcome.yaml",
        "registry": HandlerRegistry(),
        "expressions": Expressions(),
        "routines": {"routine_greet_v1": GREET},
    }
    tree = load_tree_text(text, **options)
    assert [str(warning) for warning in tree.warnings] == [expected]
    assert sorted(tree.nodes["Call"].parameters) == ["Mark", "Name"]  # Mark: its default
    with pytest.raises(TreeError) as caught:
        load_tree_text(text, strict=True, **options)
    assert [str(problem) for problem in caught.value.problems] == [expected]


def test_a_routine_may_call_itself() -> None:
    countdown = routine(
        "routine_countdown_v1",
        "Countdown",
        {
            "Start": {
                "handler": "system_start_v1",
                "connectors": [
                    {"to": "Again", "condition": "inputs['Name'] != ''"},
                    {"to": "Done", "condition": "inputs['Name'] == ''"},
                ],
            },
            "Again": {
                "handler": "routine_countdown_v1",
                "parameters": {"Name": "{{ inputs['Name'][1:] }}"},
                "connectors": [{"to": "Done"}],
            },
            "Done": {"handler": "system_tree_return_v1", "parameters": {"Greeting": "done"}},
        },
    )
    tree = load_tree_data(countdown, registry=HandlerRegistry(), expressions=Expressions())
    assert tree.routine is not None
    assert tree.routine.definition_id == "routine_countdown_v1"
    assert tree.nodes["Again"].defers


def write(path: Path, tree: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def test_files_loaded_together_know_each_others_routines(tmp_path: Path) -> None:
    write(tmp_path / "a-welcome.yaml", welcome())  # the caller comes first
    write(tmp_path / "b-greet.yaml", greet())
    trees = load_tree_files([tmp_path], registry=HandlerRegistry(), expressions=Expressions())
    assert [t.key.name for t in trees] == ["Welcome", "Greet"]
    result = run_treeflow("validate", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alone = run_treeflow("validate", str(tmp_path / "a-welcome.yaml"), cwd=tmp_path)
    assert alone.returncode == 1
    assert "node 'Greet Visitor': unknown handler 'routine_greet_v1'" in alone.stderr


def test_two_files_may_not_provide_one_routine_id(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", greet())
    write(tmp_path / "b.yaml", greet() | {"name": "Greet Again"})
    with pytest.raises(TreeError) as caught:
        load_tree_files([tmp_path], registry=HandlerRegistry(), expressions=Expressions())
    [problem] = caught.value.problems
    assert problem.file == str(tmp_path / "b.yaml")
    assert (
        problem.message == f"routine 'routine_greet_v1' is also provided by {tmp_path / 'a.yaml'}"
    )


def test_a_routine_id_provided_by_another_tree_is_refused(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(greet())
        with pytest.raises(TreeError, match="is already provided by '- :: - :: Greet'"):
            engine.load_tree(greet() | {"name": "Greet Again"})
        assert engine.catalog.routine_signatures().keys() == {"routine_greet_v1"}
        engine.load_tree(greet("Hi"))  # the same tree's new version may keep its id
        assert engine.tree_version(engine.trees[0].key) == 2


def test_a_caller_loads_once_its_routine_is_stored(database_url: str) -> None:
    with Engine(database_url) as engine:
        with pytest.raises(TreeError, match="unknown handler 'routine_greet_v1'"):
            engine.load_tree(welcome())
        engine.load_tree(greet())
    with Engine(database_url) as restarted:  # another process: the routine is in the database
        assert restarted.load_tree(welcome()).nodes["Greet Visitor"].defers


def test_a_process_deployed_as_yaml_may_call_a_stored_routine(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(greet())
        process = welcome() | {"process": "welcome"}
        deployed = engine.deploy_process(yaml.safe_dump(process, sort_keys=False))
        assert (deployed.process.name, deployed.created) == ("welcome", True)
        assert engine.trees[-1].nodes["Greet Visitor"].handler.definition_id == "routine_greet_v1"
