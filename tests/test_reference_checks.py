"""Reference checks at load (``engine.tree.reference_checks``): each rule, with its message.

Trees are loaded from YAML text with the real handler registry and expressions, as the engine
and ``treeflow validate`` load them; each test asserts the exact message, its node and line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from engine.errors import Problem, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.loader import load_tree_data, load_tree_text
from engine.tree.model import Tree
from engine.tree.yaml_reader import parse_yaml

HEAD = "source: Kinetic Request\ngroup: Tests\nname: Refs\n"


def tree_text(nodes: str, head: str = HEAD) -> str:
    return head + "nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  ")


@pytest.fixture(scope="module")
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def load(registry: HandlerRegistry) -> Callable[..., Tree]:
    def load_(text: str, strict: bool = False) -> Tree:
        return load_tree_text(
            text, file="refs.yaml", registry=registry, expressions=Expressions(), strict=strict
        )

    return load_


def refused(load: Callable[..., Tree], text: str, strict: bool = False) -> list[Problem]:
    with pytest.raises(TreeError) as caught:
        load(text, strict)
    return list(caught.value.problems)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


ECHO_READS = """\
Start:
  handler: system_start_v1
  connectors: [{to: Lookup}]
Lookup:
  handler: utilities_echo_v1
  parameters: {input: looked up}
  connectors: [{to: Report}]
Report:
  handler: utilities_echo_v1
  parameters:
    input: "{{ READ }}"
"""


def reading(read: str) -> str:
    return tree_text(ECHO_READS.replace("READ", read))


def test_unknown_node_in_results_is_an_error_with_did_you_mean(load: Callable[..., Tree]) -> None:
    text = reading("results['Lookpu']['output']")
    [problem] = refused(load, text)
    assert problem.message == "results['Lookpu'] names no node of this tree; did you mean 'Lookup'?"
    assert (problem.file, problem.node, problem.rule) == ("refs.yaml", "Report", "unknown-node")
    assert problem.line == line_of(text, "Lookpu")


def test_unknown_node_in_iterations_is_an_error(load: Callable[..., Tree]) -> None:
    [problem] = refused(load, reading("iterations['Nothing Like It']"))
    assert problem.message == "iterations['Nothing Like It'] names no node of this tree"


def test_the_attribute_spelling_is_read_too(load: Callable[..., Tree]) -> None:
    [problem] = refused(load, reading("results.Lookpu.output"))
    assert problem.message.startswith("results['Lookpu'] names no node of this tree")


def test_result_the_handler_does_not_declare_is_an_error(load: Callable[..., Tree]) -> None:
    [problem] = refused(load, reading("results['Lookup']['outptu']"))
    assert problem.message == (
        "results['Lookup']['outptu']: handler 'utilities_echo_v1' of node 'Lookup' does not"
        " declare result 'outptu' (it declares: output); did you mean 'output'?"
    )
    assert problem.rule == "undeclared-result"


def test_declared_result_of_an_upstream_node_is_clean(load: Callable[..., Tree]) -> None:
    tree = load(reading("results['Lookup']['output']"))
    assert (tree.warnings, tree.notes) == ((), ())


def test_a_deferring_nodes_result_is_a_note_given_at_completion(
    load: Callable[..., Tree],
) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Review}]
        Review:
          handler: utilities_defer_v1
          defers: true
          connectors:
            - to: Approved
              condition: results['Review']['Status'] == 'Approved'
        Approved:
          handler: utilities_echo_v1
          parameters: {input: yes}
        """)
    for strict in (False, True):  # never refused: reading a completion is what deferring is for
        tree = load(text, strict)
        [note] = tree.notes
        assert tree.warnings == ()
        assert note.message == (
            "results['Review']['Status']: handler 'utilities_defer_v1' of node 'Review' does not"
            " declare result 'Status' (it declares: deferral_token, deferred_value): given at"
            " completion, if the completion gives it"
        )
        assert (note.node, note.rule, note.line) == (
            "Review",
            "given-at-completion",
            line_of(text, "condition"),
        )


def test_handler_declaring_no_results_is_not_judged(load: Callable[..., Tree]) -> None:
    text = reading("results['Lookup']['output']").replace(
        "handler: utilities_echo_v1\n    parameters: {input: looked up}",
        "handler: system_noop_v1",
    )
    tree = load(text)
    assert tree.nodes["Lookup"].handler.results == ()
    assert (tree.warnings, tree.notes) == ((), ())


def test_node_with_no_path_to_the_reader_is_a_warning(load: Callable[..., Tree]) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Left}, {to: Right}]
        Left:
          handler: utilities_echo_v1
          parameters: {input: left}
        Right:
          handler: utilities_echo_v1
          parameters:
            input: "{{ results['Left']['output'] }}"
        """)
    [warning] = load(text).warnings
    assert warning.message == (
        "results['Left'] is read by 'Right', but no path leads from 'Left' to 'Right': it has"
        " run only if another branch ran it first"
    )
    assert (warning.node, warning.rule) == ("Right", "not-upstream")
    [problem] = refused(load, text, strict=True)
    assert problem.message == warning.message


def test_reading_its_own_results_in_a_parameter_is_not_upstream(
    load: Callable[..., Tree],
) -> None:
    [warning] = load(reading("results['Report']['output']")).warnings
    assert warning.message.startswith("results['Report'] is read by 'Report', but no path")


DIAMOND = """\
Start:
  handler: system_start_v1
  connectors:
    - {to: Fast, condition: "source.id == 'fast'"}
    - {to: Slow}
Fast:
  handler: utilities_echo_v1
  parameters: {input: fast}
  connectors: [{to: Merge}]
Slow:
  handler: utilities_echo_v1
  parameters: {input: slow}
  connectors: [{to: Merge}]
Merge:
  handler: system_join_v1
  parameters: {type: TYPE}
  connectors: [{to: Report}]
Report:
  handler: utilities_echo_v1
  parameters:
    input: "{{ results['Fast']['output'] }}"
"""


def test_node_upstream_on_some_paths_only_is_a_warning_naming_one(
    load: Callable[..., Tree],
) -> None:
    [warning] = load(tree_text(DIAMOND.replace("TYPE", "Any"))).warnings
    assert warning.message == (
        "results['Fast'] may be missing when 'Report' runs: 'Fast' is not on the path"
        " Start -> Slow -> Merge -> Report"
    )


def test_a_join_of_all_branches_has_run_every_branch(load: Callable[..., Tree]) -> None:
    tree = load(tree_text(DIAMOND.replace("TYPE", "All")))
    assert tree.warnings == ()


def test_a_condition_reads_its_own_nodes_results(load: Callable[..., Tree]) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Lookup}]
        Lookup:
          handler: utilities_echo_v1
          parameters: {input: x}
          connectors:
            - {to: Done, condition: "results['Lookup']['output'] == 'x'"}
        Done:
          handler: system_noop_v1
        """)
    tree = load(text)
    assert (tree.warnings, tree.notes) == ((), ())


ROUTINE_HEAD = HEAD + textwrap.dedent("""\
    type: routine
    definition_id: routine_refs_v1
    inputs: [Customer, Amount]
    outputs: [Total]
    """)


def test_input_a_routine_does_not_declare_is_an_error_with_did_you_mean(
    load: Callable[..., Tree],
) -> None:
    text = tree_text(
        """\
        Start:
          handler: system_start_v1
          connectors: [{to: Return}]
        Return:
          handler: system_tree_return_v1
          parameters:
            Total: "{{ inputs['Amuont'] }} for {{ inputs['Customer'] }}"
        """,
        ROUTINE_HEAD,
    )
    [problem] = refused(load, text)
    assert problem.message == (
        "inputs['Amuont'] is not an input of routine 'routine_refs_v1' (declared: Customer,"
        " Amount); did you mean 'Amount'?"
    )
    assert (problem.node, problem.rule, problem.line) == (
        "Return",
        "unknown-input",
        line_of(text, "Amuont"),
    )


def test_under_missing_nil_an_undeclared_input_or_result_is_a_warning(
    load: Callable[..., Tree],
) -> None:
    """As Kinetic reads them: nil (a real routine export reads an input it does not declare)."""
    routine = tree_text(
        """\
        Start:
          handler: system_start_v1
          connectors: [{to: Return}]
        Return:
          handler: system_tree_return_v1
          parameters:
            Total: "{{ inputs['Kapp Slug'] }} for {{ inputs['Customer'] }}"
        """,
        ROUTINE_HEAD + "missing: nil\n",
    )
    tree = load(routine)
    assert [(w.rule, w.message) for w in tree.warnings] == [
        (
            "unknown-input",
            "inputs['Kapp Slug'] is not an input of routine 'routine_refs_v1' (declared:"
            " Customer, Amount)",
        )
    ]
    plain = load(reading("results['Lookup']['outptu']").replace(HEAD, HEAD + "missing: nil\n"))
    assert [w.rule for w in plain.warnings] == ["undeclared-result"]
    assert refused(load, routine, strict=True)[0].rule == "unknown-input"


def test_inputs_of_a_plain_tree_are_not_judged(load: Callable[..., Tree]) -> None:
    assert load(reading("inputs['Anything']")).warnings == ()


FIELDS_HEAD = HEAD + "fields:\n  Attendee:\n  Status: {default: Pending}\n"


def test_value_of_a_field_the_tree_does_not_declare_is_an_error(
    load: Callable[..., Tree],
) -> None:
    [problem] = refused(load, reading("values['Atendee']").replace(HEAD, FIELDS_HEAD))
    assert problem.message == (
        "values['Atendee'] is not a field of this tree (declared: Attendee, Status); did you"
        " mean 'Attendee'?"
    )
    assert problem.rule == "unknown-field"
    assert load(reading("values['Status']").replace(HEAD, FIELDS_HEAD)).warnings == ()


def test_values_of_a_tree_without_fields_are_not_judged(load: Callable[..., Tree]) -> None:
    assert load(reading("values['Anything']")).warnings == ()


def test_line_inside_a_literal_block_is_the_references_own(load: Callable[..., Tree]) -> None:
    text = tree_text("""\
        Start:
          handler: system_start_v1
          connectors: [{to: Report}]
        Report:
          handler: utilities_echo_v1
          parameters:
            input: |
              first line
              {{ results['Strat']['x'] }}
        """)
    [problem] = refused(load, text)
    assert problem.message == "results['Strat'] names no node of this tree; did you mean 'Start'?"
    assert problem.line == line_of(text, "Strat")


def test_a_stored_version_is_rebuilt_without_the_reference_checks(
    registry: HandlerRegistry,
) -> None:
    """A version stored before the checks existed still runs: the catalog rebuilds it so."""
    definition = parse_yaml(reading("results['Lookpu']['output']"), file="refs.yaml").data
    with pytest.raises(TreeError, match="names no node of this tree"):
        load_tree_data(definition, registry=registry, expressions=Expressions())
    tree = load_tree_data(
        definition, registry=registry, expressions=Expressions(), check_references=False
    )
    assert set(tree.nodes) == {"Start", "Lookup", "Report"}
