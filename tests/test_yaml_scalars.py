"""Tree files read as YAML 1.2 scalars: a node called Yes, No, On or Off is that name.

PyYAML's YAML 1.1 turns ``Yes``/``No``/``On``/``Off`` into booleans, so ``to: Yes`` used to fail
with a message that did not say why. Each test loads a real tree through the loader.
"""

from __future__ import annotations

import textwrap

import pytest

from engine.errors import TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.loader import load_tree_text
from engine.tree.model import Tree
from engine.tree.yaml_reader import parse_yaml

HEAD = "source: Kinetic Request\ngroup: Tests\nname: Tree\n"
REGISTRY = HandlerRegistry(load_entry_points=False)


def load(nodes: str) -> Tree:
    text = HEAD + "nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  ")
    return load_tree_text(text, file="t.yaml", registry=REGISTRY, expressions=Expressions())


@pytest.mark.parametrize("name", ["Yes", "No", "On", "Off", "yes", "y", "n", "OFF"])
def test_a_node_named_like_a_yaml_1_1_boolean_is_that_name(name: str) -> None:
    tree = load(f"""\
        Start:
          handler: system_start_v1
          connectors:
            - to: {name}
        {name}:
          handler: system_noop_v1
        """)
    assert set(tree.nodes) == {"Start", name}
    assert tree.nodes["Start"].connectors[0].target == name


def test_to_yes_reaches_the_node_called_yes() -> None:
    tree = load("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Yes}, {to: No}]
        Yes: {handler: system_noop_v1}
        No: {handler: system_noop_v1}
        """)
    assert [c.target for c in tree.nodes["Start"].connectors] == ["Yes", "No"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "true",
            "'to' is a boolean (true), not a node name: to name a node 'true', "
            'quote it: to: "true"',
        ),
        (
            "False",
            "'to' is a boolean (false), not a node name: to name a node 'false', "
            'quote it: to: "false"',
        ),
        ("12", "'to' is a number (12), not a node name: to name a node '12', quote it: to: \"12\""),
    ],
)
def test_a_boolean_or_number_in_place_of_a_name_says_how_to_quote_it(
    written: str, message: str
) -> None:
    with pytest.raises(TreeError) as caught:
        load(f"""\
            Start:
              handler: system_start_v1
              connectors:
                - to: {written}
            """)
    [problem] = caught.value.problems
    assert (problem.message, problem.node, problem.line) == (message, "Start", 8)


def test_a_quoted_true_names_a_node_keyed_true() -> None:
    tree = load("""\
        Start:
          handler: system_start_v1
          connectors: [{to: "true"}]
        true: {handler: system_noop_v1}
        """)
    assert set(tree.nodes) == {"Start", "true"}


def test_scalars_follow_the_yaml_1_2_core_schema() -> None:
    parsed = parse_yaml(
        "v: [Yes, No, On, Off, true, FALSE, 012, 0o12, 0x1F, 1_000, '1:30', 1:30, 1e3, ~, null]\n",
        file="f.yaml",
    )
    assert parsed.problems == []
    assert parsed.data["v"] == [
        "Yes", "No", "On", "Off", True, False, 12, 10, 31, "1_000", "1:30", "1:30", 1000.0,
        None, None,
    ]  # fmt: skip


def test_duplicate_keys_and_lines_are_still_tracked() -> None:
    parsed = parse_yaml("a: 1\nYes: 2\nYes: 3\n", file="f.yaml")
    [problem] = parsed.problems
    assert problem.message == "duplicate key 'Yes' (first defined at line 2)"
    assert problem.line == 3
    assert parsed.line("Yes") == 2
