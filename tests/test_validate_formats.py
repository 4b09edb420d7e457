"""``treeflow validate --format json|sarif``, run as the installed console script.

SARIF is read by editors and CI, so the test checks the parts of SARIF 2.1.0 they rely on: the
version, the tool's name, and per finding its rule, level, message and file and line.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from .support import run_treeflow

REPO = Path(__file__).resolve().parents[1]

TYPO = textwrap.dedent("""\
    source: Kinetic Request
    group: Tests
    name: Typo
    nodes:
      Start:
        handler: system_start_v1
        connectors: [{to: Lookup}, {to: Side}]
      Lookup:
        handler: utilities_echo_v1
        parameters: {input: x}
        connectors: [{to: Report}]
      Side:
        handler: utilities_echo_v1
        parameters:
          input: "{{ results['Lookup']['output'] }}"
      Report:
        handler: utilities_echo_v1
        parameters:
          input: "{{ results['Lookpu']['output'] }}"
    """)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sarif_lists_each_finding_with_rule_level_message_and_location(tmp_path: Path) -> None:
    path = _write(tmp_path, TYPO)
    done = run_treeflow("validate", "--format", "sarif", str(path), cwd=REPO)
    assert done.returncode == 1
    log = json.loads(done.stdout)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    assert run["tool"]["driver"]["name"] == "treeflow"
    [result] = run["results"]
    assert result["ruleId"] == "unknown-node"
    assert result["level"] == "error"
    assert result["message"]["text"] == (
        "node 'Report': results['Lookpu'] names no node of this tree; did you mean 'Lookup'?"
    )
    [location] = result["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == path.as_posix()
    assert location["physicalLocation"]["region"]["startLine"] == 19


def test_sarif_gives_warnings_and_notes_their_levels() -> None:
    tree = REPO / "trees" / "process-registration.yaml"
    done = run_treeflow("validate", "--format", "sarif", str(tree), cwd=REPO)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["runs"][0]["results"]
    assert {r["level"] for r in results} == {"note"}
    assert {r["ruleId"] for r in results} == {"given-at-completion"}


def test_json_format_and_the_json_flag_print_the_same(tmp_path: Path) -> None:
    path = _write(tmp_path, TYPO.replace("Lookpu", "Lookup"))
    by_format = run_treeflow("validate", "--format", "json", str(path), cwd=REPO)
    by_flag = run_treeflow("validate", "--json", str(path), cwd=REPO)
    assert by_format.returncode == by_flag.returncode == 0
    assert by_format.stdout == by_flag.stdout
    found = json.loads(by_format.stdout)
    [warning] = found["warnings"]
    assert warning["rule"] == "not-upstream"
    assert warning["node"] == "Side"
    assert warning["message"] == (
        "results['Lookup'] is read by 'Side', but no path leads from 'Lookup' to 'Side': it"
        " has run only if another branch ran it first"
    )
    assert found["problems"] == [] and found["notes"] == []


def test_json_flag_with_another_format_is_a_usage_error(tmp_path: Path) -> None:
    path = _write(tmp_path, TYPO)
    done = run_treeflow("validate", "--json", "--format", "sarif", str(path), cwd=REPO)
    assert done.returncode == 2
    assert "--json is --format json; it cannot go with --format sarif" in done.stderr
    assert done.stdout == ""


def test_example_trees_validate_clean_under_strict() -> None:
    done = run_treeflow("validate", "--strict", "--format", "json", "trees", cwd=REPO)
    assert done.returncode == 0, done.stdout
    found = json.loads(done.stdout)
    assert (found["problems"], found["warnings"]) == ([], [])
    assert len(found["trees"]) == 11
