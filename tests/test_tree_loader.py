"""Loading and validating trees: the checks the README lists, rule by rule.

Every bad tree is reported as a TreeError whose problems name the file, the node and the line;
the tables below give, for each rule, a tree breaking only that rule and the one problem it must
produce. Lines are given by a fragment of the line meant (``at``), so a reader sees which line it
is, and the assertion still checks the exact number.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.errors import Problem, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.files import load_tree_files, routines_in, tree_files
from engine.tree.loader import load_tree_data, load_tree_text
from engine.tree.model import Tree
from engine.tree.yaml_reader import MAX_VALUES

TREES = Path(__file__).resolve().parents[1] / "trees"
HEAD = "source: Kinetic Request\ngroup: Tests\nname: Tree\n"

GOOD = HEAD + textwrap.dedent("""\
    description: Review, notify, audit, then join.
    nodes:
      Start:
        handler: system_start_v1
        connectors:
          - to: Review
          - to: Audit
      Review:
        handler: utilities_defer_v1
        defers: true
        connectors:
          - to: Notify Reviewer
            type: Create
            label: ask for a review
          - to: Progress
            type: Update
          - to: Approved
            label: approved
            condition: results['Review']['Status'] == 'Approved'
      Notify Reviewer:
        handler: utilities_echo_v1
        parameters:
          input: "token {{ results['Review']['deferral_token'] }}"
      Progress:
        handler: utilities_echo_v1
        parameters:
          input: progress
      Approved:
        handler: utilities_echo_v1
        parameters:
          input: "{{ source.id }} approved"
        connectors:
          - to: Done
      Audit:
        handler: system_noop_v1
        connectors:
          - to: Done
      Done:
        handler: system_join_v1
        parameters:
          type: All
    """)


def tree_text(nodes: str, head: str = HEAD) -> str:
    """A tree file: the usual head, then ``nodes:`` with ``nodes`` (written at column 0)."""
    return head + "nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  ")


def line_of(text: str, fragment: str) -> int:
    """The number of the one line of ``text`` that contains ``fragment``."""
    numbers = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(numbers) == 1, f"{fragment!r} is on lines {numbers}, not on exactly one"
    return numbers[0]


@pytest.fixture(scope="module")
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture(scope="module")
def load(registry: HandlerRegistry) -> Callable[[str], Tree]:
    expressions = Expressions()

    def load(text: str) -> Tree:
        return load_tree_text(text, file="t.yaml", registry=registry, expressions=expressions)

    return load


@pytest.fixture(scope="module")
def problems(load: Callable[[str], Tree]) -> Callable[[str], list[Problem]]:
    def problems(text: str) -> list[Problem]:
        with pytest.raises(TreeError) as caught:
            load(text)
        assert all(problem.file == "t.yaml" for problem in caught.value.problems)
        return list(caught.value.problems)

    return problems


# -- the example trees ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(TREES.glob("*.yaml")), ids=lambda path: path.name)
def test_example_tree_loads_and_validates(path: Path, registry: HandlerRegistry) -> None:
    tree = load_tree_text(
        path.read_text(encoding="utf-8"),
        file=str(path),
        registry=registry,
        expressions=Expressions(),
        routines=routines_in([TREES]),  # a caller is checked against the routines beside it
    )
    assert tree.file == str(path)
    assert tree.nodes[tree.start].handler_id == "system_start_v1"
    assert set(tree.graph.nodes) == set(tree.nodes)


def test_example_trees_load_together_each_under_its_own_key(registry: HandlerRegistry) -> None:
    trees = load_tree_files([TREES], registry=registry, expressions=Expressions())
    assert [Path(tree.file).name for tree in trees] == sorted(p.name for p in TREES.glob("*.yaml"))
    assert len({tree.key for tree in trees}) == len(trees)


# -- a good tree -----------------------------------------------------------------------------------


def test_tree_key_is_source_group_and_name(load: Callable[[str], Tree]) -> None:
    tree = load(GOOD)
    assert (tree.key.source_name, tree.key.source_group, tree.key.name) == (
        "Kinetic Request",
        "Tests",
        "Tree",
    )
    assert tree.description == "Review, notify, audit, then join."
    assert tree.status == "Active"


def test_nodes_are_named_by_their_keys_in_file_order(load: Callable[[str], Tree]) -> None:
    tree = load(GOOD)
    assert list(tree.nodes) == [
        "Start",
        "Review",
        "Notify Reviewer",
        "Progress",
        "Approved",
        "Audit",
        "Done",
    ]
    assert tree.nodes["Review"].handler_id == "utilities_defer_v1"
    assert tree.nodes["Review"].defers is True
    assert tree.nodes["Audit"].defers is False


def test_start_is_the_node_using_system_start(load: Callable[[str], Tree]) -> None:
    assert load(GOOD).start == "Start"


def test_node_remembers_the_line_of_its_key(load: Callable[[str], Tree]) -> None:
    assert load(GOOD).nodes["Audit"].line == line_of(GOOD, "Audit:")


def test_connectors_are_split_by_type(load: Callable[[str], Tree]) -> None:
    review = load(GOOD).nodes["Review"]
    assert [c.target for c in review.connectors] == ["Notify Reviewer", "Progress", "Approved"]
    assert [c.target for c in review.complete_connectors] == ["Approved"]
    assert [c.target for c in review.create_connectors] == ["Notify Reviewer"]
    assert [c.target for c in review.update_connectors] == ["Progress"]


def test_connector_type_defaults_to_complete(load: Callable[[str], Tree]) -> None:
    start = load(GOOD).nodes["Start"]
    assert [c.type.value for c in start.connectors] == ["Complete", "Complete"]
    assert start.complete_connectors == start.connectors


def test_connector_keeps_its_label_and_its_compiled_condition(load: Callable[[str], Tree]) -> None:
    approved, notify = (
        next(c for c in load(GOOD).nodes["Review"].connectors if c.target == name)
        for name in ("Approved", "Notify Reviewer")
    )
    assert (approved.source, approved.label, notify.label) == (
        "Review",
        "approved",
        "ask for a review",
    )
    assert notify.condition is None
    assert approved.condition is not None
    assert approved.condition.evaluate({"results": {"Review": {"Status": "Approved"}}}) is True
    assert approved.condition.evaluate({"results": {"Review": {"Status": "Denied"}}}) is False


def test_parameters_are_compiled_templates(load: Callable[[str], Tree]) -> None:
    tree = load(GOOD)
    scope = {"source": {"id": "R-1"}}
    assert tree.nodes["Approved"].parameters["input"].render(scope) == "R-1 approved"
    assert tree.nodes["Progress"].parameters["input"].render({}) == "progress"


def test_omitted_parameter_takes_the_handler_default(load: Callable[[str], Tree]) -> None:
    tree = load(GOOD)
    assert tree.nodes["Done"].parameters["number"].source == ""
    assert tree.nodes["Review"].parameters["deferred_value"].source == ""


def test_join_incoming_names_the_nodes_with_a_connector_into_it(
    load: Callable[[str], Tree],
) -> None:
    tree = load(GOOD)
    assert tree.nodes["Done"].incoming == ("Approved", "Audit")
    assert tree.nodes["Start"].incoming == ()


def test_graph_has_an_edge_per_connector_with_its_type(load: Callable[[str], Tree]) -> None:
    graph = load(GOOD).graph
    assert {(a, b, data["type"]) for a, b, data in graph.edges(data=True)} == {
        ("Start", "Review", "Complete"),
        ("Start", "Audit", "Complete"),
        ("Review", "Notify Reviewer", "Create"),
        ("Review", "Progress", "Update"),
        ("Review", "Approved", "Complete"),
        ("Approved", "Done", "Complete"),
        ("Audit", "Done", "Complete"),
    }
    assert graph.edges["Review", "Approved"]["label"] == "approved"
    assert graph.nodes["Review"] == {"handler": "utilities_defer_v1", "defers": True}


def test_definition_is_the_plain_data_of_the_file(load: Callable[[str], Tree]) -> None:
    definition = load(GOOD).definition
    assert definition["nodes"]["Progress"] == {
        "handler": "utilities_echo_v1",
        "parameters": {"input": "progress"},
    }


def test_digest_is_stable_when_keys_are_reordered(load: Callable[[str], Tree]) -> None:
    reordered = textwrap.dedent("""\
        nodes:
          Only:
            connectors: [{label: go, to: End}]
            handler: system_start_v1
          End: {parameters: {input: done}, handler: utilities_echo_v1}
        name: Tree
        group: Tests
        source: Kinetic Request
        """)
    original = tree_text("""\
        Only:
          handler: system_start_v1
          connectors:
            - to: End
              label: go
        End:
          handler: utilities_echo_v1
          parameters:
            input: done
        """)
    assert load(reordered).digest == load(original).digest


def test_digest_changes_when_the_content_changes(load: Callable[[str], Tree]) -> None:
    assert load(GOOD).digest != load(GOOD.replace("input: progress", "input: progress!")).digest


def test_plain_data_loads_like_yaml_without_lines(registry: HandlerRegistry) -> None:
    data = {
        "source": "S",
        "group": "G",
        "name": "N",
        "nodes": {"Start": {"handler": "system_start_v1", "connectors": [{"to": "Nowhere"}]}},
    }
    with pytest.raises(TreeError) as caught:
        load_tree_data(data, registry=registry, expressions=Expressions())
    assert caught.value.problems == (
        Problem(file="<dict>", message="connector to unknown node 'Nowhere'", node="Start"),
    )


# -- YAML values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "template"),
    [
        ("42", "42"),
        ("1.5", "1.5"),
        ("true", "true"),
        ("false", "false"),
        ("2024-01-31", "2024-01-31"),
        ("2024-13-45", "2024-13-45"),
    ],
    ids=["integer", "float", "true", "false", "date", "date-like but no date"],
)
def test_scalar_parameter_becomes_a_template_of_its_text(
    load: Callable[[str], Tree], written: str, template: str
) -> None:
    tree = load(
        tree_text(f"""\
            Start:
              handler: system_start_v1
              connectors: [{{to: Echo}}]
            Echo:
              handler: utilities_echo_v1
              parameters:
                input: {written}
            """)
    )
    assert tree.nodes["Echo"].parameters["input"].render({}) == template
    assert tree.digest  # the definition stays JSON: a date is kept as its text


def test_boolean_condition_is_an_expression(load: Callable[[str], Tree]) -> None:
    tree = load(
        tree_text("""\
            Start:
              handler: system_start_v1
              connectors: [{to: End, condition: true}]
            End: {handler: system_noop_v1}
            """)
    )
    condition = tree.nodes["Start"].connectors[0].condition
    assert condition is not None
    assert condition.evaluate({}) is True


def test_yaml_anchor_and_merge_key_build_nodes_alike(load: Callable[[str], Tree]) -> None:
    tree = load(
        tree_text("""\
            Start:
              handler: system_start_v1
              connectors: [{to: First}, {to: Second}, {to: Third}]
            First: &echo
              handler: utilities_echo_v1
              parameters: {input: first}
            Second:
              <<: *echo
              parameters: {input: second}
            Third: *echo
            """)
    )
    assert {name: node.handler_id for name, node in tree.nodes.items() if name != "Start"} == {
        "First": "utilities_echo_v1",
        "Second": "utilities_echo_v1",
        "Third": "utilities_echo_v1",
    }
    assert tree.nodes["Second"].parameters["input"].source == "second"
    assert tree.nodes["Third"].parameters["input"].source == "first"


def test_a_node_merged_by_an_alias_twice_is_read_alike_each_time(
    load: Callable[[str], Tree],
) -> None:
    tree = load(
        tree_text("""\
            Start:
              handler: system_start_v1
              connectors: [{to: First}, {to: Second}]
            First: &merged
              <<: {handler: utilities_echo_v1, parameters: {input: base}}
              parameters: {input: own}
            Second: *merged
            """)
    )
    assert [tree.nodes[n].parameters["input"].source for n in ("First", "Second")] == ["own", "own"]


def test_template_error_in_a_literal_block_points_at_its_own_line(
    problems: Callable[[str], list[Problem]],
) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Echo}]
        Echo:
          handler: utilities_echo_v1
          parameters:
            input: |
              first line
              second line {{ results[ }}
              third line
        """)
    [problem] = problems(text)
    assert (problem.node, problem.line) == ("Echo", line_of(text, "second line"))
    assert problem.message.startswith("parameter 'input' does not compile: syntax error")


# -- one rule, one problem -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A tree breaking one rule: the node, the line (a fragment of it) and the message."""

    nodes: str
    node: str | None
    at: str | None  # a fragment of the line the problem points at; None: no line
    message: str
    head: str = HEAD

    @property
    def text(self) -> str:
        return tree_text(self.nodes, self.head)


START = """\
Start:
  handler: system_start_v1
  connectors:
    - to: A
"""

BAD_TREES = {
    "unknown handler": Bad(
        START + "A:\n  handler: utilities_ecko_v1\n",
        "A",
        "utilities_ecko_v1",
        "unknown handler 'utilities_ecko_v1'; known handlers: ",
    ),
    "missing handler": Bad(
        START + "A:\n  description: no handler\n",
        "A",
        "A:",
        "'handler' is missing; known handlers: ",
    ),
    "connector to an unknown node": Bad(
        START + "A:\n  handler: system_noop_v1\n  connectors:\n    - to: Nowhere\n",
        "A",
        "to: Nowhere",
        "connector to unknown node 'Nowhere'",
    ),
    "duplicate node name": Bad(
        START + "A:\n  handler: system_noop_v1\nA:  # again\n  handler: system_noop_v1\n",
        "A",
        "# again",
        "duplicate key 'A' (first defined at line 9)",
    ),
    "duplicate key inside a node": Bad(
        START + "A:\n  handler: system_noop_v1\n  handler: system_join_v1\n",
        "A",
        "system_join_v1",
        "duplicate key 'handler' (first defined at line 10)",
    ),
    "missing required parameter": Bad(
        START + "A:\n  handler: utilities_echo_v1\n",
        "A",
        "A:",
        "required parameter 'input' of 'utilities_echo_v1' is missing",
    ),
    "missing required parameter in parameters": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  parameters: {}\n",
        "A",
        "parameters: {}",
        "required parameter 'input' of 'utilities_echo_v1' is missing",
    ),
    "parameter not declared by the handler": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  parameters:\n    input: x\n    output: y\n",
        "A",
        "output: y",
        "parameter 'output' is not declared by 'utilities_echo_v1' (declared: input)",
    ),
    "parameter of a handler declaring none": Bad(
        START + "A:\n  handler: system_noop_v1\n  parameters: {input: x}\n",
        "A",
        "input: x",
        "parameter 'input' is not declared by 'system_noop_v1' (declared: none)",
    ),
    "value outside the menu": Bad(
        START + "A:\n  handler: system_join_v1\n  parameters:\n    type: Most\n",
        "A",
        "type: Most",
        "parameter 'type' is 'Most'; it must be one of All, Any, Some",
    ),
    "Some join without a number": Bad(
        START + "A:\n  handler: system_join_v1\n  parameters:\n    type: Some\n",
        "A",
        "parameters:",
        "a Some join needs 'number' from 1 to 1 (its incoming connectors), not ''",
    ),
    "Some join with a number that is not a number": Bad(
        START + "A:\n  handler: system_join_v1\n  parameters: {type: Some,\n    number: two}\n",
        "A",
        "number: two",
        "a Some join needs 'number' from 1 to 1 (its incoming connectors), not 'two'",
    ),
    "Some join waiting for none": Bad(
        START + "A:\n  handler: system_join_v1\n  parameters: {type: Some,\n    number: 0}\n",
        "A",
        "number: 0",
        "a Some join needs 'number' from 1 to 1 (its incoming connectors), not '0'",
    ),
    "Some join waiting for more connectors than it has": Bad(
        START + "A:\n  handler: system_join_v1\n  parameters: {type: Some,\n    number: 2}\n",
        "A",
        "number: 2",
        "a Some join needs 'number' from 1 to 1 (its incoming connectors), not '2'",
    ),
    "cycle": Bad(
        START + "A:\n  handler: system_noop_v1\n  connectors: [{to: B}]\n"
        "B:\n  handler: system_noop_v1\n  connectors:\n    - to: A  # back\n",
        "B",
        "# back",
        "connector to 'A' closes a cycle: A -> B -> A",
    ),
    "connector to its own node": Bad(
        START + "A:\n  handler: system_noop_v1\n  connectors:\n    - to: A  # self\n",
        "A",
        "# self",
        "connector to 'A' closes a cycle: A -> A",
    ),
    "defers on a non-deferrable handler": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  defers: true\n  parameters: {input: x}\n",
        "A",
        "defers: true",
        "'defers: true' but handler 'utilities_echo_v1' is not deferrable",
    ),
    "Create connector from a node that does not defer": Bad(
        START
        + "A:\n  handler: utilities_defer_v1\n  connectors:\n    - to: B\n      type: Create\n"
        "B:\n  handler: system_noop_v1\n",
        "A",
        "type: Create",
        "a Create connector to 'B' never fires: the node does not defer",
    ),
    "Update connector from a node that does not defer": Bad(
        START + "A:\n  handler: utilities_defer_v1\n  defers: false\n  connectors:\n"
        "    - {to: B, type: Update}\nB:\n  handler: system_noop_v1\n",
        "A",
        "type: Update",
        "a Update connector to 'B' never fires: the node does not defer",
    ),
    "template that does not compile": Bad(
        START
        + "A:\n  handler: utilities_echo_v1\n  parameters:\n    input: \"{{ results['A' }}\"\n",
        "A",
        "input:",
        "parameter 'input' does not compile: syntax error: unexpected '}'",
    ),
    "template with a forbidden tag": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  parameters:\n"
        "    input: \"{% include 'x' %}\"\n",
        "A",
        "input:",
        "parameter 'input' does not compile: the {% include %} tag is not allowed",
    ),
    "condition that does not compile": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n"
        "    - to: A\n      condition: results['A'] ==\nA:\n  handler: system_noop_v1\n",
        "Start",
        "condition:",
        "condition does not compile: syntax error: unexpected 'end of template'",
    ),
    "empty condition": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n"
        "    - to: A\n      condition: ''\nA:\n  handler: system_noop_v1\n",
        "Start",
        "condition:",
        "condition does not compile: empty condition",
    ),
    "no start node": Bad(
        "A:\n  handler: system_noop_v1\n",
        None,
        "nodes:",
        "a tree needs one node with handler system_start_v1; it has none",
    ),
    "two start nodes": Bad(
        START + "A:\n  handler: system_noop_v1\nAgain: {handler: system_start_v1}\n",
        "Again",
        "Again:",
        "a second start node: 'Start' already uses system_start_v1",
    ),
    "connector into the start node": Bad(
        START + "A:\n  handler: system_noop_v1\n  connectors:\n    - to: Start\n",
        "A",
        "to: Start",
        "connector into the start node 'Start'",
    ),
    "unknown top-level key": Bad(
        START + "A: {handler: system_noop_v1}\n",
        None,
        "sauce:",
        "unknown key 'sauce'; known keys: deferral_token_auth, definition_id, description, "
        "fields, group, inputs, missing, name, nodes, outputs, process, retry, selection, source, "
        "status, type",
        head=HEAD + "sauce: tomato\n",
    ),
    "unknown node key": Bad(
        START + "A:\n  handler: system_noop_v1\n  colour: red\n",
        "A",
        "colour:",
        "unknown key 'colour'; known keys: connectors, defers, description, handler, parameters, "
        "retry",
    ),
    "unknown connector key": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n    - to: A\n      when: now\n"
        "A: {handler: system_noop_v1}\n",
        "Start",
        "when:",
        "unknown key 'when'; known keys: condition, label, to, type",
    ),
    "missing tree name": Bad(
        START + "A: {handler: system_noop_v1}\n",
        None,
        "source:",
        "'name' is required and must be a non-empty text",
        head="source: Kinetic Request\ngroup: Tests\n",
    ),
    "unknown tree status": Bad(
        START + "A: {handler: system_noop_v1}\n",
        None,
        "status:",
        "status 'Running' is not one of Active, Inactive, Paused",
        head=HEAD + "status: Running\n",
    ),
    "node that is not a mapping": Bad(
        START + "A: utilities_echo_v1\n",
        "A",
        "A: utilities_echo_v1",
        "a node is a mapping with a 'handler', not a text",
    ),
    "connectors that are not a list": Bad(
        "Start:\n  handler: system_start_v1\n  connectors: {to: A}\nA: {handler: system_noop_v1}\n",
        "Start",
        "connectors:",
        "'connectors' must be a list, not a mapping",
    ),
    "connector that is not a mapping": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n    - A\n"
        "A: {handler: system_noop_v1}\n",
        "Start",
        "- A",
        "a connector is a mapping with 'to: NODE NAME'",
    ),
    "parameters that are not a mapping": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  parameters: [input]\n",
        "A",
        "parameters:",
        "'parameters' must be a mapping of names to templates, not a list",
    ),
    "parameter that is not a scalar": Bad(
        START + "A:\n  handler: utilities_echo_v1\n  parameters:\n    input: [a, b]\n",
        "A",
        "input:",
        "parameter 'input' must be a template (a text), not a list",
    ),
    "defers that is not a boolean": Bad(
        START + "A:\n  handler: utilities_defer_v1\n  defers: maybe\n",
        "A",
        "defers:",
        "'defers' must be true or false, not 'maybe'",
    ),
    "bad connector type": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n    - to: A\n      type: Completed\n"
        "A: {handler: system_noop_v1}\n",
        "Start",
        "type: Completed",
        "connector type 'Completed' is not one of Complete, Create, Update",
    ),
    "condition that is not a scalar": Bad(
        "Start:\n  handler: system_start_v1\n  connectors:\n    - to: A\n      condition: [x]\n"
        "A: {handler: system_noop_v1}\n",
        "Start",
        "condition:",
        "a condition is an expression, not a list",
    ),
    "key that is not a text": Bad(
        START + "A: {handler: system_noop_v1, ~: null}\n",
        "A",
        "A:",
        "a key must be a text, not a null",
    ),
    "merge key of a text": Bad(
        START + "A:\n  <<: plain\n  handler: system_noop_v1\n",
        "A",
        "<<: plain",
        "a merge key (<<) takes a mapping or a list of them",
    ),
    "alias to a collection that contains it": Bad(
        START + "A: &a\n  handler: system_noop_v1\n  description: *a\n",
        "A",
        "description:",
        "an alias refers to a collection that contains it",
    ),
}


@pytest.mark.parametrize("bad", BAD_TREES.values(), ids=BAD_TREES.keys())
def test_bad_tree_is_reported_once_with_file_node_and_line(
    problems: Callable[[str], list[Problem]], bad: Bad
) -> None:
    [problem] = problems(bad.text)
    assert problem.message.startswith(bad.message), problem.message
    assert problem.node == bad.node
    assert problem.line == (None if bad.at is None else line_of(bad.text, bad.at))


def test_unknown_handler_lists_every_known_handler(
    problems: Callable[[str], list[Problem]], registry: HandlerRegistry
) -> None:
    [problem] = problems(BAD_TREES["unknown handler"].text)
    assert problem.message.endswith(
        "known handlers: " + ", ".join(registry.ids) + "; did you mean 'utilities_echo_v1'?"
    )
    assert {"system_start_v1", "utilities_echo_v1", "system_join_v1"} <= set(registry.ids)


# -- documents that are not trees ----------------------------------------------------------------

NOT_TREES = {
    "empty document": ("", None, "the document is empty"),
    "only comments": ("# nothing here\n", None, "the document is empty"),
    "a list": ("- Start\n- End\n", 1, "a tree is a mapping, not a list"),
    "a text": ("just words\n", 1, "a tree is a mapping, not a text"),
    "nodes missing": (HEAD, 1, "'nodes' must map node names to nodes; it is null"),
    "nodes a list": (
        HEAD + "nodes:\n  - Start\n",
        4,
        "'nodes' must map node names to nodes; it is a list",
    ),
    "nodes empty": (HEAD + "nodes: {}\n", 4, "'nodes' must map node names to nodes; it is empty"),
    "mapping value where none is allowed": (
        HEAD + "nodes:\n  Start:\n    handler: a: b\n",
        6,
        "invalid YAML: mapping values are not allowed here",
    ),
    "unclosed flow sequence": (
        HEAD + "nodes:\n  Start: {handler: system_start_v1, connectors: [\n  End: {}\n",
        7,  # where the stream ends; the message names the line the sequence opens on
        "invalid YAML: while parsing a flow sequence (from line 5) expected ',' or ']'",
    ),
    "tab indentation": (HEAD + "nodes:\n\tStart: {}\n", 5, "invalid YAML: while scanning"),
    "two documents": (HEAD + "---\nname: Other\n", 4, "invalid YAML: expected a single document"),
    "unknown tag": (HEAD + "nodes: !python/object x\n", 4, "invalid YAML: could not determine"),
    "nested too deeply": (
        HEAD + "nodes: " + "[" * 5000 + "]" * 5000,
        None,
        "the document is nested",
    ),
}


@pytest.mark.parametrize(("text", "line", "message"), NOT_TREES.values(), ids=NOT_TREES.keys())
def test_document_that_is_not_a_tree_is_reported_with_its_line(
    problems: Callable[[str], list[Problem]], text: str, line: int | None, message: str
) -> None:
    [problem] = problems(text)
    assert (problem.node, problem.line) == (None, line)
    assert problem.message.startswith(message), problem.message


def test_alias_bomb_is_refused_without_expanding_it(
    problems: Callable[[str], list[Problem]],
) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    [problem] = problems(HEAD + "bomb:\n" + textwrap.indent("\n".join(levels), "  ") + "\n")
    assert problem.message == (
        f"the document expands to more than {MAX_VALUES} values (through aliases?)"
    )


# -- every problem at once -----------------------------------------------------------------------


def test_every_problem_of_a_tree_is_reported_at_once(
    problems: Callable[[str], list[Problem]],
) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors:
            - to: Check
            - to: Nowhere
        Check:
          handler: utilities_chek_v1
          connectors:
            - to: Echo
              condition: results['Check'] ==
        Echo:
          handler: utilities_echo_v1
          parameters:
            input: fine
            colour: red
        """)
    expected = [
        ("Start", "to: Nowhere", "connector to unknown node 'Nowhere'"),
        ("Check", "utilities_chek_v1", "unknown handler 'utilities_chek_v1'; known handlers: "),
        ("Check", "condition:", "condition does not compile: syntax error"),
        ("Echo", "colour:", "parameter 'colour' is not declared by 'utilities_echo_v1'"),
    ]
    found = problems(text)
    assert [(p.node, p.line) for p in found] == [(n, line_of(text, at)) for n, at, _ in expected]
    for problem, (_, _, message) in zip(found, expected, strict=True):
        assert problem.message.startswith(message), problem.message


def test_parameter_that_does_not_compile_is_not_also_reported_missing(
    problems: Callable[[str], list[Problem]],
) -> None:
    messages = [p.message for p in problems(BAD_TREES["template that does not compile"].text)]
    assert not any("missing" in message for message in messages)


def test_nodes_after_an_unknown_handler_are_not_reported_unreachable(
    problems: Callable[[str], list[Problem]],
) -> None:
    text = START + "A:\n  handler: nope_v1\n  connectors: [{to: B}]\nB: {handler: system_noop_v1}\n"
    assert [p.node for p in problems(tree_text(text))] == ["A"]


def test_templated_join_settings_are_checked_when_run_not_at_load(
    load: Callable[[str], Tree],
) -> None:
    tree = load(
        tree_text(
            START + "A:\n  handler: system_join_v1\n  parameters:\n"
            "    type: \"{{ inputs['Join Type'] }}\"\n"
            "    number: \"{{ inputs['Join Number'] }}\"\n"
        )
    )
    assert tree.nodes["A"].parameters["type"].names == {"inputs"}


# -- files -----------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_two_files_defining_one_tree_are_reported_naming_both(
    tmp_path: Path, registry: HandlerRegistry
) -> None:
    good = tree_text(START + "A: {handler: system_noop_v1}\n")
    first, second = write(tmp_path / "a.yaml", good), write(tmp_path / "b.yml", good)
    with pytest.raises(TreeError) as caught:
        load_tree_files([tmp_path], registry=registry, expressions=Expressions())
    assert caught.value.problems == (
        Problem(
            file=str(second),
            message=f"tree 'Kinetic Request :: Tests :: Tree' is also defined in {first}",
        ),
    )


def test_problems_of_every_file_come_in_one_error(
    tmp_path: Path, registry: HandlerRegistry
) -> None:
    write(tmp_path / "good.yaml", tree_text(START + "A: {handler: system_noop_v1}\n"))
    one = write(tmp_path / "one.yaml", BAD_TREES["unknown handler"].text)
    two = write(tmp_path / "two.yaml", "nodes: [\n")
    with pytest.raises(TreeError) as caught:
        load_tree_files([tmp_path], registry=registry, expressions=Expressions())
    assert [(p.file, p.node, p.line) for p in caught.value.problems] == [
        (str(one), "A", line_of(BAD_TREES["unknown handler"].text, "utilities_ecko_v1")),
        (str(two), None, 2),
    ]
    assert str(caught.value).startswith("2 problems in tree definition:\n")


def test_file_that_is_not_utf8_is_reported_not_raised(
    tmp_path: Path, registry: HandlerRegistry
) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(TreeError) as caught:
        load_tree_files([bad], registry=registry, expressions=Expressions())
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (str(bad), None)
    assert problem.message.startswith("cannot read the file: 'utf-8' codec can't decode")


def test_tree_files_lists_yaml_files_sorted_and_each_once(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "notes.txt"):
        write(tmp_path / name, "")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.yaml", "")
    assert tree_files([tmp_path, tmp_path / "a.yml"]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        tmp_path / "sub" / "c.yaml",
    ]
