"""Importing Kinetic Task exports: the examples convert, validate and run; hostile or malformed
exports are refused with their line (and column); what is not translated is kept and reported.

The exports under ``tests/fixtures/kinetic/`` were written for these tests in the format Kinetic
Task's own exports use (the README, Importing Kinetic Task trees).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine import Engine, RunStatus, TaskStatus
from engine.errors import KineticImportError, Problem, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree, convert_kinetic
from engine.tree.expressions import Expressions
from engine.tree.files import load_tree_files
from engine.tree.loader import load_tree_text

from .support import run_treeflow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kinetic"
REPO = Path(__file__).resolve().parents[1]
ONBOARDING = FIXTURES / "onboarding-tree.xml"
EXPENSE = FIXTURES / "expense-tasktree.xml"
UNTRANSLATABLE = FIXTURES / "untranslatable-tree.xml"
ROUTINE = FIXTURES / "greet-routine.xml"
CALLER = FIXTURES / "greet-visitor-tree.xml"


def convert(path: Path, **kwargs: str) -> KineticTree:
    return convert_kinetic(path.read_bytes(), file=path.name, **kwargs)


def refused(document: str) -> list[Problem]:
    with pytest.raises(KineticImportError) as caught:
        convert_kinetic(document, file="export.xml")
    return list(caught.value.problems)


def validate(text: str) -> None:
    load_tree_text(text, registry=HandlerRegistry(), expressions=Expressions())


def results(**values: str) -> str:
    items = "".join(f'<result name="{name}">{value}</result>' for name, value in values.items())
    return f"<results>{items}</results>"


# -- conversion ----------------------------------------------------------------------------------


def test_tree_export_becomes_a_yaml_tree_with_nodes_by_name_and_connectors_by_type() -> None:
    converted = convert(ONBOARDING)

    data = converted.definition
    assert (data["source"], data["group"], data["name"]) == (
        "Kinetic Request",
        "HR > Onboarding",
        "Onboard Employee",
    )
    assert data["description"] == "Manager approval, then accounts and a welcome note."
    assert list(data["nodes"]) == [
        "Start",
        "Greet",
        "Manager Approval",
        "Notify Manager",
        "Progress Note",
        "Approved",
        "Declined",
    ]
    approval = data["nodes"]["Manager Approval"]
    assert approval["handler"] == "utilities_defer_v1"
    assert approval["defers"] is True
    assert approval["parameters"] == {"deferred_value": "{{ results['Greet']['output'] }}"}
    assert approval["connectors"] == [
        {"to": "Notify Manager", "type": "Create", "label": "notify"},
        {"to": "Progress Note", "type": "Update", "label": "progress"},
        {
            "to": "Approved",
            "label": "approved",
            "condition": "results['Manager Approval']['Decision'] == 'Approve'",
        },
        {
            "to": "Declined",
            "label": "declined",
            "condition": "results['Manager Approval']['Decision'] != 'Approve'",
        },
    ]
    assert data["nodes"]["Greet"]["parameters"] == {
        "input": "Welcome {{ inputs['Employee'] }} (request {{ source.id }})"
    }
    assert converted.kept == ()


def test_yaml_text_reads_back_as_the_converted_definition() -> None:
    converted = convert(ONBOARDING)

    text = converted.yaml()

    assert text.startswith("# Converted from the Kinetic Task export onboarding-tree.xml.\n")
    assert yaml.safe_load(text) == converted.definition


def test_the_example_in_trees_is_the_conversion_of_the_onboarding_export() -> None:
    converted = convert_kinetic(
        ONBOARDING.read_bytes(), file="tests/fixtures/kinetic/onboarding-tree.xml"
    )

    assert (REPO / "trees" / "onboard-employee.yaml").read_text(
        encoding="utf-8"
    ) == converted.yaml()


def test_bare_task_tree_takes_source_and_group_from_the_caller() -> None:
    converted = convert(EXPENSE, source="Finance", group="Expenses")

    assert converted.definition["source"] == "Finance"
    assert converted.definition["group"] == "Expenses"
    assert converted.kept == ()
    connectors = converted.definition["nodes"]["Amount"]["connectors"]
    assert [c.get("condition") for c in connectors] == [
        "(results['Amount']['output']|to_i) < 100 and (not ((inputs['Urgent']|length) == 0))",
        "(results['Amount']['output']|to_i) >= 100 or inputs['Urgent'] == 'yes'",
        None,
    ]


def test_bare_task_tree_without_source_is_reported_not_guessed() -> None:
    converted = convert(EXPENSE)

    assert converted.definition["source"] == converted.definition["group"] == "-"
    assert [p.message for p in converted.kept] == [
        "the export names no sourceName; give it with --source",
        "the export names no sourceGroup; give it with --group",
    ]


def test_routine_export_declares_its_definition_id_inputs_and_outputs() -> None:
    converted = convert(ROUTINE)

    assert converted.routine
    data = converted.definition
    assert (data["type"], data["definition_id"]) == ("routine", "routine_greet_v1")
    assert (data["inputs"], data["outputs"]) == (["Name"], ["Greeting"])
    assert (data["source"], data["group"]) == ("-", "-")
    assert data["nodes"]["Return"] == {
        "handler": "system_tree_return_v1",
        "parameters": {"Greeting": "Hello, {{ inputs['Name'] }}!"},
    }


def test_an_optional_routine_input_converts_to_a_mapping() -> None:
    export = ROUTINE.read_text(encoding="utf-8").replace(
        '<parameter id="Name" label="Name" required="true" tooltip="who to greet"/>',
        '<parameter id="Name" label="Name" required="true"/>'
        '<parameter id="Mark" required="false"/>',
    )

    converted = convert_kinetic(export, file="greet.xml")

    assert converted.definition["inputs"] == ["Name", {"name": "Mark", "required": False}]
    validate(converted.yaml())


def test_untranslatable_code_is_kept_as_written_and_reported_per_node() -> None:
    converted = convert(UNTRANSLATABLE)

    assert [(p.file, p.node, p.line) for p in converted.kept] == [
        ("untranslatable-tree.xml", "Summary", 23),
        ("untranslatable-tree.xml", "Summary", 23),
        ("untranslatable-tree.xml", "Summary", 26),
        ("untranslatable-tree.xml", "Summary", 29),
    ]
    messages = [p.message for p in converted.kept]
    assert messages[1] == (
        "parameter 'input' keeps \"<%= @request['Requested For'] %>\": "
        "Web API bindings (@request...) are not supported"
    )
    assert messages[2].startswith("the Complete message \"Summary done for <%= @source['Id'] %>\"")
    assert "keeps its condition \"@results['Summary']['output'] =~ /VIP/\"" in messages[3]
    summary = converted.definition["nodes"]["Summary"]
    assert summary["parameters"]["input"] == (
        "<%= @results['Start']['x'].reverse %> for <%= @request['Requested For'] %> "
        "by {{ source.id }}"
    )
    assert summary["connectors"][0]["condition"] == "@results['Summary']['output'] =~ /VIP/"
    assert converted.definition["nodes"]["Email"]["handler"] == "kinetic_email_send_v1"
    text = converted.yaml()
    for problem in converted.kept:
        assert f"#   {problem}" in text


def test_untranslated_condition_and_unknown_handler_fail_validation_by_name() -> None:
    with pytest.raises(TreeError) as caught:
        validate(convert(UNTRANSLATABLE).yaml())

    messages = [(p.node, p.message.split(":")[0]) for p in caught.value.problems]
    assert messages == [
        ("Summary", "condition does not compile"),
        ("Email", "unknown handler 'kinetic_email_send_v1'; known handlers"),
    ]


def test_two_nodes_of_one_name_are_told_apart_and_reported() -> None:
    export = ONBOARDING.read_text(encoding="utf-8").replace('name="Declined"', 'name="Greet"')

    converted = convert_kinetic(export, file="export.xml")

    assert "Greet (utilities_echo_v1_5)" in converted.definition["nodes"]
    [kept] = converted.kept
    assert kept.message.startswith("a second node named 'Greet' is renamed")


# -- round trip: convert, validate, run ----------------------------------------------------------


def test_onboarding_export_runs_update_then_complete(database_url: str) -> None:
    with Engine(database_url) as engine:
        tree = engine.load_tree(convert(ONBOARDING).yaml())
        trigger = engine.create_start(
            source_name=tree.key.source_name,
            source_group=tree.key.source_group,
            tree_name=tree.key.name,
            source_id="REQ-1",
            results=results(Employee="Ada"),
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.task("Greet").results["output"] == "Welcome Ada (request REQ-1)"
        assert run.task("Manager Approval").status is TaskStatus.DEFERRED
        token = run.open_tokens["Manager Approval"]
        assert run.task("Notify Manager").results["output"] == f"Please approve: token {token}"

        engine.create_deferred(token=token, action="Update", results=results(Note="half way"))
        engine.run_until_idle()
        engine.create_deferred(token=token, action="Complete", results=results(Decision="Approve"))
        engine.run_until_idle()

        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Progress Note").results["output"] == "Progress: half way"
        assert run.task("Approved").status is TaskStatus.CLOSED
        assert "Declined" not in {task.name for task in run.tasks}


def test_routine_export_and_a_tree_export_calling_it_validate_and_run(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "greet.yaml").write_text(convert(ROUTINE).yaml(), encoding="utf-8")
    (tmp_path / "greet-visitor.yaml").write_text(convert(CALLER).yaml(), encoding="utf-8")
    loaded = load_tree_files([tmp_path], registry=HandlerRegistry(), expressions=Expressions())
    assert sorted(t.key.name for t in loaded) == ["Greet", "Greet Visitor"]

    with Engine(database_url, trees=tmp_path) as engine:
        trigger = engine.create_start(
            source_name="Kinetic Request",
            source_group="Front Desk",
            tree_name="Greet Visitor",
            source_id="V-1",
            results=results(Visitor="Ada"),
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Greet Visitor").results == {"Greeting": "Hello, Ada!"}
        assert run.task("Print Badge").results["output"] == "Hello, Ada! (visit V-1)"
        [child] = run.children
        assert engine.get_run(child.run_id).inputs == {"Name": "Ada"}


@pytest.mark.parametrize(
    ("amount", "urgent", "ran"),
    [("40", "no", "Auto Approve"), ("400", "no", "Escalate")],
    ids=["small", "large"],
)
def test_bare_task_tree_export_runs_its_ruby_conditions(
    database_url: str, amount: str, urgent: str, ran: str
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(convert(EXPENSE, source="Finance", group="Expenses").yaml())
        trigger = engine.create_start(
            source_name="Finance",
            source_group="Expenses",
            tree_name="Expense Check",
            source_id="EXP-1",
            results=results(Amount=amount, Urgent=urgent),
        )
        engine.run_until_idle()

        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert {task.name for task in run.tasks} == {"Start", "Amount", "Audit Mark", ran}
        if ran == "Auto Approve":
            assert run.task(ran).results["output"] == "auto-approved 40 for Finance"


# -- refused exports ---------------------------------------------------------------------------

HOSTILE = {
    "billion laughs": (
        '<?xml version="1.0"?>\n<!DOCTYPE tree [\n <!ENTITY a "aaaa">\n'
        ' <!ENTITY b "&a;&a;&a;&a;">\n]>\n<tree>&b;</tree>',
        "export.xml:2: line 2, column 1: Kinetic export document has a DOCTYPE",
    ),
    "external entity": (
        '<?xml version="1.0"?>\n<!-- hello -->\n  <!DOCTYPE tree [<!ENTITY x SYSTEM '
        '"file:///etc/passwd">]>\n<tree>&x;</tree>',
        "export.xml:3: line 3, column 3: Kinetic export document has a DOCTYPE",
    ),
    "external DTD": (
        '<!DOCTYPE tree SYSTEM "http://example.com/tree.dtd"><tree/>',
        "export.xml:1: line 1, column 1: Kinetic export document has a DOCTYPE",
    ),
    "undeclared entity": (
        "<tree>\n  <taskTree>&xxe;</taskTree>\n</tree>",
        "export.xml:2: line 2, column 18: Kinetic export document is not well-formed: "
        "Entity 'xxe' not defined",
    ),
}

MALFORMED = {
    "not well-formed": (
        "<tree>\n  <taskTree>\n  </tree>",
        "export.xml:3: line 3, column 10: Kinetic export document is not well-formed: "
        "Opening and ending tag mismatch: taskTree line 2 and tree",
    ),
    "not a tree": (
        "<results/>",
        "export.xml:1: the root element is <results>; expected <tree> or <taskTree>",
    ),
    "envelope without a task tree": (
        "<tree>\n<sourceName>x</sourceName>\n</tree>",
        "export.xml:1: the root element has no <taskTree>; expected <tree> or <taskTree>",
    ),
    "no request": (
        "<taskTree>\n  <name>T</name>\n</taskTree>",
        "export.xml:1: <taskTree> has no <request> holding the nodes",
    ),
    "connector to an unknown node": (
        '<taskTree><name>T</name><request>\n<task definition_id="system_start_v1" id="start" '
        'name="Start"><dependents>\n<task type="Complete">nowhere</task></dependents></task>'
        "</request></taskTree>",
        "export.xml:3: node 'Start': a connector to unknown node id 'nowhere'",
    ),
    "unknown connector type": (
        '<taskTree><name>T</name><request>\n<task definition_id="system_start_v1" id="start" '
        'name="Start"><dependents>\n<task type="Sometimes">start</task></dependents></task>'
        "</request></taskTree>",
        "export.xml:3: node 'Start': connector type 'Sometimes' is not one of Complete, "
        "Create, Update",
    ),
    "node without a handler": (
        '<taskTree><name>T</name><request>\n<task id="start" name="Start"/>\n</request></taskTree>',
        "export.xml:2: node 'Start': a <task> without definition_id",
    ),
    "node id used twice": (
        '<taskTree><name>T</name><request>\n<task definition_id="system_start_v1" id="start" '
        'name="Start"/>\n<task definition_id="system_noop_v1" id="start" name="Other"/>'
        "</request></taskTree>",
        "export.xml:3: node 'Other': node id 'start' is used twice",
    ),
}


@pytest.mark.parametrize(("document", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_xml_is_refused_with_line_and_column(document: str, message: str) -> None:
    [problem] = refused(document)

    assert str(problem).startswith(message)


@pytest.mark.parametrize(("document", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_export_is_refused_naming_where(document: str, message: str) -> None:
    [problem] = refused(document)

    assert str(problem) == message


def test_every_structural_problem_is_reported_at_once() -> None:
    document = (
        '<taskTree><request>\n<task definition_id="system_start_v1" id="start" name="Start">'
        '<dependents><task>a</task>\n<task type="Later">start</task></dependents></task>\n'
        "<oops/></request></taskTree>"
    )

    messages = [str(problem) for problem in refused(document)]

    assert messages == [
        "export.xml:1: the tree has no name",
        "export.xml:4: <request> holds <oops>; only <task> nodes",
        "export.xml:2: node 'Start': a connector to unknown node id 'a'",
        "export.xml:3: node 'Start': connector type 'Later' is not one of Complete, Create, Update",
    ]


# -- the command -------------------------------------------------------------------------------


def test_cli_writes_the_yaml_file_and_reports_on_stderr(tmp_path: Path) -> None:
    result = run_treeflow("import-kinetic", str(ONBOARDING), "-o", "onboard.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "wrote onboard.yaml: tree 'Onboard Employee' (7 nodes), 0 kept as written"
    )
    written = (tmp_path / "onboard.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(written) == convert(ONBOARDING).definition
    validated = run_treeflow("validate", "onboard.yaml", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr


def test_cli_prints_to_stdout_without_output_file(tmp_path: Path) -> None:
    result = run_treeflow(
        "import-kinetic", str(EXPENSE), "--source", "Finance", "--group", "Expenses", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert (
        yaml.safe_load(result.stdout)
        == convert(EXPENSE, source="Finance", group="Expenses").definition
    )
    assert "converted: tree 'Expense Check' (5 nodes), 0 kept as written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_lists_what_was_kept_and_fails_when_the_result_does_not_validate(
    tmp_path: Path,
) -> None:
    result = run_treeflow("import-kinetic", str(UNTRANSLATABLE), "-o", "x.yaml", cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert sum(line.startswith("kept ") for line in lines) == 4
    assert any(
        line.startswith("error x.yaml:") and "unknown handler 'kinetic_email_send_v1'" in line
        for line in lines
    ), result.stderr
    assert lines[-1] == (
        "wrote x.yaml: tree 'Needs Review' (3 nodes), 4 kept as written; "
        "it does not validate yet: 2 problem(s)"
    )
    assert (tmp_path / "x.yaml").exists()  # written, to be finished by hand


def test_cli_validates_a_routine_call_against_the_routines_under_trees(tmp_path: Path) -> None:
    alone = run_treeflow("import-kinetic", str(CALLER), "-o", "visitor.yaml", cwd=tmp_path)
    assert alone.returncode == 1
    assert "unknown handler 'routine_greet_v1'" in alone.stderr

    (tmp_path / "trees").mkdir()
    routine = run_treeflow("import-kinetic", str(ROUTINE), "-o", "trees/greet.yaml", cwd=tmp_path)
    assert routine.returncode == 0, routine.stderr
    caller = run_treeflow(
        "import-kinetic", str(CALLER), "-o", "trees/visitor.yaml", "--force", cwd=tmp_path
    )
    assert caller.returncode == 0, caller.stderr
    assert caller.stderr.strip() == (
        "wrote trees/visitor.yaml: tree 'Greet Visitor' (3 nodes), 0 kept as written"
    )
    validated = run_treeflow("validate", "trees", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr


def test_cli_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("mine", encoding="utf-8")

    result = run_treeflow("import-kinetic", str(ONBOARDING), "-o", "x.yaml", cwd=tmp_path)
    forced = run_treeflow(
        "import-kinetic", str(ONBOARDING), "-o", "x.yaml", "--force", cwd=tmp_path
    )

    assert result.returncode == 1
    assert "Error: 'x.yaml' exists; give --force to overwrite it" in result.stderr
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "x.yaml").read_text(encoding="utf-8") != "mine"


def test_cli_refuses_hostile_export_naming_line_and_column(tmp_path: Path) -> None:
    export = tmp_path / "bad.xml"
    export.write_text(HOSTILE["billion laughs"][0], encoding="utf-8")

    result = run_treeflow("import-kinetic", str(export), cwd=tmp_path)

    assert result.returncode == 1
    assert "line 2, column 1: Kinetic export document has a DOCTYPE" in result.stderr
    assert result.stdout == ""
