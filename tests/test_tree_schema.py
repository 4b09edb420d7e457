"""The JSON Schema of tree files (``treeflow schema``), checked with the jsonschema library.

The shipped ``trees/tree.schema.json`` must be what ``treeflow schema trees/`` writes today, every
example tree must validate against it and name it on its first line, and the shapes the loader
refuses (an unknown handler, parameter or key, a value outside a menu) must fail it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.cli.schema import schema_text
from engine.tree.loader import CONNECTOR_KEYS, NODE_KEYS, TREE_KEYS
from engine.tree.yaml_reader import parse_yaml

TREES = Path(__file__).resolve().parents[1] / "trees"
SHIPPED = TREES / "tree.schema.json"
EXAMPLES = sorted(TREES.glob("*.yaml"))
COMMENT = "# yaml-language-server: $schema=tree.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SHIPPED.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data))


def test_the_shipped_schema_is_what_treeflow_schema_writes() -> None:
    result = CliRunner().invoke(main, ["schema", str(TREES)])
    assert result.exit_code == 0, result.output
    assert result.output == schema_text((str(TREES),))
    assert SHIPPED.read_text(encoding="utf-8") == result.output, (
        "trees/tree.schema.json is out of date: run treeflow schema trees/ > trees/tree.schema.json"
    )


def test_handler_ids_are_an_enum_of_the_installed_handlers_and_routines() -> None:
    schema = json.loads(schema_text((str(TREES),)))
    ids = schema["definitions"]["node"]["properties"]["handler"]["enum"]
    assert {"system_start_v1", "utilities_echo_v1", "system_wait_v1"} <= set(ids)
    assert "routine_compose_welcome_v1" in ids  # from trees/compose-welcome.yaml
    assert (
        "routine_compose_welcome_v1"
        not in json.loads(schema_text())["definitions"]["node"]["properties"]["handler"]["enum"]
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_tree_validates_and_names_the_schema(
    path: Path, validator: jsonschema.Draft7Validator
) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == COMMENT
    parsed = parse_yaml(text, file=str(path))
    assert parsed.problems == []
    assert errors(validator, parsed.data) == []


def tree(**node: Any) -> dict[str, Any]:
    start = {"handler": "system_start_v1", "connectors": [{"to": "Node"}]}
    return {"source": "S", "group": "G", "name": "N", "nodes": {"Start": start, "Node": node}}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (
            {"handler": "utilities_ecko_v1"},
            "['nodes', 'Node', 'handler']: 'utilities_ecko_v1' is not one of",
        ),
        (
            {"handler": "utilities_echo_v1", "parameters": {"inptu": "x"}},
            "['nodes', 'Node', 'parameters']: Additional properties are not allowed "
            "('inptu' was unexpected)",
        ),
        (
            {"handler": "system_wait_v1", "parameters": {"Time to wait": "1", "Time unit": "Year"}},
            "['nodes', 'Node', 'parameters', 'Time unit']: 'Year' is not valid under any",
        ),
        (
            {"handler": "system_join_v1", "parameters": {"type": "All"}, "colour": "red"},
            "['nodes', 'Node']: Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            {"handler": "system_noop_v1", "defers": True},
            "['nodes', 'Node', 'defers']: False was expected",
        ),
        (
            {"handler": "system_noop_v1", "connectors": [{"to": True}]},
            "['nodes', 'Node', 'connectors', 0, 'to']: True is not of type 'string'",
        ),
    ],
    ids=["unknown handler", "unknown parameter", "menu", "unknown key", "defers", "to: true"],
)
def test_what_the_loader_refuses_the_schema_refuses(
    validator: jsonschema.Draft7Validator, node: dict[str, Any], expected: str
) -> None:
    found = errors(validator, tree(**node))
    assert any(error.startswith(expected) for error in found), found


def test_a_template_is_accepted_where_a_menu_value_is_expected(
    validator: jsonschema.Draft7Validator,
) -> None:
    node = {
        "handler": "system_wait_v1",
        "parameters": {"Time to wait": "1", "Time unit": "{{ inputs['Unit'] }}"},
    }
    assert errors(validator, tree(**node)) == []


def test_a_missing_required_parameter_fails_the_schema(
    validator: jsonschema.Draft7Validator,
) -> None:
    found = errors(validator, tree(handler="system_wait_v1", parameters={"Time unit": "Hour"}))
    assert found == ["['nodes', 'Node', 'parameters']: 'Time to wait' is a required property"]


def test_the_schema_knows_every_key_the_loader_knows() -> None:
    """A key added to the loader and not to the schema would be flagged in every editor."""
    schema = json.loads(schema_text())
    definitions = schema["definitions"]
    assert set(schema["properties"]) == TREE_KEYS
    assert set(definitions["node"]["properties"]) == NODE_KEYS
    assert set(definitions["connector"]["properties"]) == CONNECTOR_KEYS
