"""A tree's process name and fields: validated at load with every problem listed, and one
process name per tree, between files and in the database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine, FieldSpec, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.fields import derived_process_name
from engine.tree.files import load_tree_files
from engine.tree.loader import load_tree_text
from engine.tree.model import Tree

NODES = textwrap.dedent("""\
    nodes:
      Start:
        handler: system_start_v1
    """)
REGISTRY = HandlerRegistry()
EXPRESSIONS = Expressions()


def load(text: str) -> Tree:
    return load_tree_text(text, file="t.yaml", registry=REGISTRY, expressions=EXPRESSIONS)


def tree(name: str = "New Training Process", extra: str = "", group: str = "Tests") -> str:
    return f"source: Kianda\ngroup: {group}\nname: {name}\n{textwrap.dedent(extra)}{NODES}"


def line_of(text: str, fragment: str) -> int:
    [number] = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return number


@pytest.mark.parametrize(
    ("name", "process"),
    [
        ("New Training Process", "new-training-process"),
        ("  Expense -- Approval (v2)  ", "expense-approval-v2"),
        ("KEG > Conference_Registration", "keg-conference-registration"),
        ("Résumé Ünïcode Tree", "resume-unicode-tree"),
    ],
)
def test_the_process_name_is_the_tree_name_in_lower_case_with_hyphens(
    name: str, process: str
) -> None:
    assert derived_process_name(name) == process
    assert load(tree(repr(name), "fields:\n")).process == process  # declaring fields


def test_a_process_key_names_the_process() -> None:
    assert load(tree(extra="process: training\n")).process == "training"


def test_fields_are_declared_with_label_default_and_settable() -> None:
    loaded = load(
        tree(
            extra="""\
            fields:
              Reason:
              Days: {label: Days away, default: 2}
              Code: {default: HR, settable: false, description: set by HR}
            """
        )
    )
    assert loaded.fields == (
        FieldSpec(name="Reason", label="Reason", default=None, settable=True),
        FieldSpec(name="Days", label="Days away", default=2, settable=True),
        FieldSpec(name="Code", label="Code", default="HR", settable=False, description="set by HR"),
    )


def test_every_problem_of_process_and_fields_is_listed_with_its_line() -> None:
    text = tree(
        extra="""\
        process: Not A Name
        fields:
          Reason: {lable: Why}
          Days: {default: [1, 2]}
          Code: {settable: "no"}
          Note: a text
          "a, b": {}
        """
    )
    with pytest.raises(TreeError) as caught:
        load(text)
    found = [(p.line, p.message) for p in caught.value.problems]
    assert found == [
        (
            line_of(text, "process:"),
            "'process' must be lower-case letters and digits in words joined by single hyphens "
            "(e.g. new-training-process), not 'Not A Name'",
        ),
        (
            line_of(text, "lable"),
            "unknown key 'lable' in field 'Reason'; known keys: default, description, label, "
            "settable",
        ),
        (
            line_of(text, "Days:"),
            "field 'Days': 'default' must be a text, number, boolean or null, not a list",
        ),
        (line_of(text, "Code:"), "field 'Code': 'settable' must be true or false, not 'no'"),
        (line_of(text, "Note:"), "a field is a mapping (or null), not a text"),
        (
            line_of(text, '"a, b"'),
            "field name 'a, b' must be a non-empty text of at most 200 characters without commas",
        ),
    ]
    assert all(p.file == "t.yaml" for p in caught.value.problems)


def test_fields_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(TreeError, match="'fields' must map field names to fields, not a list"):
        load(tree(extra="fields: [Reason]\n"))


def test_a_tree_name_with_no_letters_needs_a_process_key() -> None:
    with pytest.raises(TreeError, match="cannot derive a process name from the tree name '!!!'"):
        load(tree("'!!!'", "fields: {}\n"))
    assert load(tree("'!!!'", "process: bangs\n")).process == "bangs"


def test_two_files_with_one_process_name_fail_validation(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(tree("Expense Approval", "fields:\n"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(tree("Other", "process: expense-approval\n"), "utf-8")
    with pytest.raises(TreeError) as caught:
        load_tree_files([tmp_path], registry=REGISTRY, expressions=EXPRESSIONS)
    [problem] = caught.value.problems
    assert problem.file == str(tmp_path / "b.yaml")
    assert problem.message == (
        "process name 'expense-approval' is also the process of tree "
        f"'Kianda :: Tests :: Expense Approval' in {tmp_path / 'a.yaml'}"
    )


def test_a_process_name_taken_in_the_database_is_refused_and_nothing_stored(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(tree("Expense Approval", "fields:\n"))
        with pytest.raises(TreeError) as caught:
            engine.load_tree(tree("Expense Approval", "fields:\n", group="Elsewhere"))
        [problem] = caught.value.problems
        assert problem.message == (
            "process name 'expense-approval' is already the process of tree "
            "'Kianda :: Tests :: Expense Approval'"
        )
        with engine.database.read() as connection:
            groups = connection.execute(sa.text("SELECT source_group FROM tree_versions"))
            assert [row[0] for row in groups] == ["Tests"]
        # A tree may rename its own process; its old name is then free for another tree.
        engine.load_tree(tree("Expense Approval", "process: expenses\n"))
        engine.load_tree(tree("Expense Approval", "fields:\n", group="Elsewhere"))
        assert [(p.name, p.key.source_group) for p in engine.list_processes()] == [
            ("expense-approval", "Elsewhere"),
            ("expenses", "Tests"),
        ]


def test_the_example_trees_have_distinct_process_names() -> None:
    trees = load_tree_files(
        [Path(__file__).resolve().parents[1] / "trees"],
        registry=REGISTRY,
        expressions=EXPRESSIONS,
    )
    names = [t.process for t in trees if t.process]
    assert len(set(names)) == len(names)
    assert {t.process for t in trees if t.routine is not None} == {""}
    training = next(t for t in trees if t.process == "new-training-process")
    assert [(f.name, f.settable) for f in training.fields] == [
        ("Reason", True),
        ("Course", True),
        ("Days", True),
        ("Budget Code", False),
    ]


ROUTINE = textwrap.dedent("""\
    type: routine
    definition_id: routine_shout_v1
    source: "-"
    group: "-"
    name: Shout
    inputs: [Text]
    outputs: [Loud]
    nodes:
      Start:
        handler: system_start_v1
        connectors:
          - to: Return
      Return:
        handler: system_tree_return_v1
        parameters:
          Loud: "{{ inputs['Text'] | upper }}"
    """)


def test_a_routine_is_not_a_process() -> None:
    assert load(ROUTINE).process == ""
    text = ROUTINE.replace(
        "inputs: [Text]", "process: shout\nfields: {Colour: null}\ninputs: [Text]"
    )
    with pytest.raises(TreeError) as caught:
        load(text)
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (
            line_of(text, "process: shout"),
            "a routine is not a process: 'process' is for trees (a routine's callers give its "
            "'inputs')",
        ),
        (
            line_of(text, "fields:"),
            "a routine is not a process: 'fields' is for trees (a routine's callers give its "
            "'inputs')",
        ),
    ]


def test_routines_are_not_listed_or_deployed_as_processes(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(ROUTINE)
        engine.load_tree(tree("Expenses", "fields:\n"))
        assert [p.name for p in engine.list_processes()] == ["expenses"]
        with pytest.raises(TreeError, match="'routine_shout_v1' is a routine, not a process"):
            engine.deploy_process(ROUTINE)
        assert [p.name for p in engine.list_processes()] == ["expenses"]
