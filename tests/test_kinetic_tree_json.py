"""Kinetic Platform 6 JSON workflow exports (``treeJson``): converted, validated and run.

``tests/fixtures/kinetic/submitted-workflow.json`` is written in the shape Platform 6's
workflow export writes (``workflows/{event}/{name}.json``): ``nodes`` with ``definitionId``
and ``parameters`` as ``{"id", "value"}`` objects, and a flat ``connectors`` list. A Task API
v2 tree body carrying ``treeJson`` (as an object or as JSON text) converts too, with its
source, group, type and routine header.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine, RunStatus, TaskStatus
from engine.errors import KineticImportError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import convert_kinetic
from engine.tree.expressions import Expressions
from engine.tree.loader import load_tree_text

from .support import run_treeflow

WORKFLOW = Path(__file__).resolve().parent / "fixtures" / "kinetic" / "submitted-workflow.json"
CLAIMS = "Submissions > services > expense-claim"


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WORKFLOW.read_text(encoding="utf-8"))
    return data


def convert(data: Any, **options: str) -> dict[str, Any]:
    text = json.dumps(data) if not isinstance(data, str) else data
    definition: dict[str, Any] = convert_kinetic(text, file="w.json", **options).definition
    return definition


def refusal(document: str) -> str:
    with pytest.raises(KineticImportError) as caught:
        convert_kinetic(document, file="w.json")
    [problem] = caught.value.problems
    return str(problem)


def test_a_workflow_export_converts_with_its_connectors_and_parameters() -> None:
    data = convert(workflow(), source="Kinetic Request CE", group=CLAIMS)

    assert (data["source"], data["group"], data["name"]) == (
        "Kinetic Request CE",
        CLAIMS,
        "Submitted",
    )
    assert list(data["nodes"]) == ["Start", "Summary", "Review", "Reviewed"]
    assert data["nodes"]["Summary"] == {
        "handler": "utilities_echo_v1",
        "parameters": {"input": "Claim of {{ inputs['Amount'] }} for {{ source.id }}"},
        "connectors": [
            {"to": "Review", "label": "Needs review", "condition": "inputs['Amount'] == '500'"}
        ],
    }
    assert data["nodes"]["Review"] == {
        "handler": "utilities_defer_v1",
        "defers": True,
        "parameters": {"deferral_value": "{{ inputs['Amount'] }}"},
        "connectors": [{"to": "Reviewed"}],
    }


def test_without_a_connectors_list_each_nodes_dependents_are_its_connectors() -> None:
    with_dependents = workflow()
    del with_dependents["connectors"]
    with_dependents["nodes"][1]["dependents"] = {
        "task": [{"label": "", "type": "Complete", "value": "", "content": "utilities_defer_v1_2"}]
    }

    nodes = convert(with_dependents, source="s", group="g")["nodes"]

    assert nodes["Start"]["connectors"] == [{"to": "Summary"}]
    assert nodes["Summary"]["connectors"] == [{"to": "Review"}]
    assert "connectors" not in nodes["Review"]


def test_a_task_api_tree_body_gives_source_group_and_status_and_may_hold_json_text() -> None:
    body = {
        "name": "Submitted",
        "sourceName": "Kinetic Request CE",
        "sourceGroup": CLAIMS,
        "status": "Inactive",
        "type": "Tree",
        "treeJson": json.dumps(workflow()),
    }

    data = convert(body)

    assert (data["source"], data["group"], data["status"]) == (
        "Kinetic Request CE",
        CLAIMS,
        "Inactive",
    )
    assert list(data["nodes"]) == ["Start", "Summary", "Review", "Reviewed"]


def test_a_routine_body_converts_to_a_routine_with_its_inputs_and_outputs() -> None:
    tree_json = {
        "name": "Double",
        "nodes": [
            {"id": "start", "name": "Start", "definitionId": "system_start_v1"},
            {
                "id": "system_tree_return_v1_1",
                "name": "Return",
                "definitionId": "system_tree_return_v1",
                "parameters": [
                    {"id": "Twice", "value": "<%= @inputs['Text'] %><%= @inputs['Text'] %>"}
                ],
            },
        ],
        "connectors": [{"from": "start", "to": "system_tree_return_v1_1", "type": "Complete"}],
    }
    body = {
        "name": "Double",
        "sourceName": "-",
        "sourceGroup": "-",
        "type": "Global Routine",
        "definitionId": "routine_double",
        "inputs": [{"name": "Text", "required": True}, {"name": "Note", "required": False}],
        "outputs": [{"name": "Twice"}],
        "treeJson": tree_json,
    }

    data = convert(body)

    assert (data["type"], data["definition_id"]) == ("routine", "routine_double")
    assert data["inputs"] == ["Text", {"name": "Note", "required": False}]
    assert data["outputs"] == ["Twice"]
    text = yaml.safe_dump(data, sort_keys=False)
    tree = load_tree_text(text, registry=HandlerRegistry(), expressions=Expressions())
    assert tree.routine is not None and tree.warnings == ()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '{"kapp": "services", "forms": []}',
            "w.json: this JSON is not a Kinetic workflow export: it has no 'nodes' list (its"
            " keys: forms, kapp)",
        ),
        ('{"nodes": [', "w.json: the JSON is not well-formed: "),
        ('{"nodes": ["start"]}', "w.json: node 0 of 'nodes' is not an object"),
        ('{"treeJson": 7}', "w.json: 'treeJson' is not an object"),
        (
            '{"nodes": [], "connectors": [{"to": "x"}]}',
            "w.json: a connector is an object with 'from' and 'to', not {'to': 'x'}",
        ),
        ('{"name": "a", "name": "b", "nodes": []}', "w.json: the JSON is not well-formed: "),
    ],
    ids=[
        "not a workflow",
        "malformed",
        "node not an object",
        "treeJson not an object",
        "connector without from",
        "key twice",
    ],
)
def test_json_that_is_not_a_workflow_is_refused_by_name(document: str, message: str) -> None:
    assert refusal(document).startswith(message)


def test_a_converted_workflow_runs_through_its_deferral(database_url: str) -> None:
    text = convert_kinetic(
        WORKFLOW.read_bytes(), file=WORKFLOW.name, source="Kinetic Request CE", group=CLAIMS
    ).yaml()
    with Engine(database_url) as engine:
        engine.load_tree(text)
        trigger = engine.create_start(
            source_name="Kinetic Request CE",
            source_group=CLAIMS,
            tree_name="Submitted",
            source_id="CLAIM-9",
            results='<results><result name="Amount">500</result></results>',
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.task("Summary").results == {"output": "Claim of 500 for CLAIM-9"}
        assert run.task("Review").status is TaskStatus.DEFERRED
        token = run.open_tokens["Review"]
        engine.create_deferred(
            token=token,
            action="Complete",
            results='<results><result name="Decision">Paid</result></results>',
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Reviewed").results == {"output": "Reviewed 500: Paid"}


def test_the_command_imports_a_json_workflow_that_then_validates(tmp_path: Path) -> None:
    (tmp_path / "trees").mkdir()
    result = run_treeflow(
        "import-kinetic",
        str(WORKFLOW),
        "--source",
        "Kinetic Request CE",
        "--group",
        CLAIMS,
        "-o",
        "trees/submitted.yaml",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        "wrote trees/submitted.yaml: tree 'Submitted' (4 nodes), 0 kept as written"
    )
    validated = run_treeflow("validate", "trees", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
