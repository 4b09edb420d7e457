"""Loop paths a caller can write (a templated ``loop_path``): JSONPath regexes run on RE2, a
budget bounds the steps a path takes, and computed values are refused. Work is counted in
steps, never timed; the one test that would run for hours on a backtracking engine runs in a
subprocess killed after a generous deadline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Engine, ErrorType, RunStatus, TaskStatus, TreeError
from engine.results_xml import write_results
from engine.tree.loop_source import LoopSourceError, loop_values

from .support import small_tree, start_small

EMAILS = json.dumps(
    [{"email": "ada@example.com"}, {"email": "grace@other.org"}, {"email": "bo@example.com"}]
)


def templated_loop(name: str) -> dict[str, object]:
    """A loop whose data source and path both come from the run's inputs."""
    return small_tree(
        name,
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
            "Each": {
                "handler": "system_loop_head_v1",
                "parameters": {
                    "data_source": "{{ inputs['Source'] }}",
                    "loop_path": "{{ inputs['Path'] }}",
                },
                "connectors": [{"to": "Done"}, {"to": "Body"}],
            },
            "Body": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ results['Each']['Value'] }}"},
                "connectors": [{"to": "Done"}],
            },
            "Done": {"handler": "system_loop_tail_v1", "parameters": {"type": "All"}},
        },
    )


def run_loop(engine: Engine, source: str, path: str) -> int:
    engine.load_tree(templated_loop("Paths"))
    inputs = write_results({"Source": source, "Path": path})
    return start_small(engine, "Paths", results=inputs)


_CATASTROPHIC = r"""
import json, sys
from engine import Engine
from engine.results_xml import write_results

source = json.dumps(["a" * 40 + "b", "aaa", "ab"])
with Engine() as engine:
    engine.load_tree(json.loads(sys.argv[1]))
    trigger = engine.create_start(
        source_name="Tests", source_group="Semantics", tree_name="Paths",
        results=write_results({"Source": source, "Path": '$[?(@ =~ "(a+)+$")]'}),
    )
    engine.run_until_idle()
    run = engine.get_run(trigger.run_id)
    print(json.dumps([run.status.value, run.task("Each").results["Count"],
                      run.task("Body", "/0").results["output"]]))
"""


def test_a_catastrophic_regex_in_a_rendered_loop_path_selects_the_right_elements(
    tmp_path: Path,
) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CATASTROPHIC, json.dumps(templated_loop("Paths"))],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,  # RE2 takes a pass over each text; backtracking took 2**40 steps
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the loop over '(a+)+$' was still running after 60 s")

    assert json.loads(done.stdout) == ["Completed", "1", "aaa"]


def test_a_regex_filter_still_selects_what_it_matches(database_url: str) -> None:
    with Engine(database_url) as engine:
        run = engine.get_run(run_loop(engine, EMAILS, '$[?(@.email =~ "@example\\.com$")]'))

    assert run.status is RunStatus.COMPLETED
    assert [run.task("Body", index).results["output"] for index in ("/0", "/1")] == [
        '{"email":"ada@example.com"}',
        '{"email":"bo@example.com"}',
    ]
    assert run.task("Each").results["Count"] == "2"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ('$[?(@.email =~ "(?<=@)example")]', "has a regular expression '(?<=@)example' that RE2 "
         "cannot run (invalid perl operator: (?<=): loop paths use RE2's syntax, without "
         "backreferences or lookaround"),
        ('$[?(@.email =~ "(a)\\\\1")]', "has a regular expression '(a)\\\\1' that RE2 cannot run "
         "(invalid escape sequence: \\1): loop paths use RE2's syntax, without backreferences "
         "or lookaround"),
        ("$[*].email * 3", "uses arithmetic ('*'): a loop path selects values, it "
         "computes none"),
        ("$[*].email.`sub(/a/, aaaaaaaa)`", "uses sub(): a loop path selects values, it "
         "computes none"),
    ],
    ids=["lookbehind", "backreference", "arithmetic", "sub"],
)  # fmt: skip
def test_a_rendered_path_using_what_loop_paths_refuse_is_a_node_parameter_error_naming_it(
    database_url: str, path: str, reason: str
) -> None:
    with Engine(database_url) as engine:
        run = engine.get_run(run_loop(engine, EMAILS, path))

    [error] = run.errors
    assert error.type == ErrorType.NODE_PARAMETER
    assert error.summary == f"Loop head 'Each': loop_path {path!r} {reason}"
    assert run.task("Each").status is TaskStatus.FAILED
    assert [task.name for task in run.tasks] == ["Start", "Each"]


def test_a_constant_loop_path_with_a_regex_re2_cannot_run_is_refused_at_load() -> None:
    tree = templated_loop("Constant")
    tree["nodes"]["Each"]["parameters"]["loop_path"] = '$[?(@ =~ "(?=x)")]'  # type: ignore[index]

    with Engine() as engine, pytest.raises(TreeError) as refused:
        engine.load_tree(tree)

    [problem] = refused.value.problems
    assert (problem.node, problem.message) == (
        "Each",
        "loop_path '$[?(@ =~ \"(?=x)\")]' has a regular expression '(?=x)' that RE2 cannot run "
        "(invalid perl operator: (?=): loop paths use RE2's syntax, without backreferences or "
        "lookaround",
    )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


MULTIPLYING = "$..*..*..*..*..*..*"  # each ..* visits everything below every value found


def test_a_path_that_multiplies_its_results_is_stopped_by_the_step_budget() -> None:
    assert len(loop_values(nested(8), MULTIPLYING, max_steps=100_000)) == 7  # C(8 - 1, 6)

    with pytest.raises(LoopSourceError) as refused:
        loop_values(nested(30), MULTIPLYING, max_steps=100_000)  # C(29, 6): 475,020

    assert (
        str(refused.value)
        == f"loop_path {MULTIPLYING!r} takes more than 100000 steps over the data"
    )


@pytest.mark.parametrize("path", ["$[*].id", "$..id", "$[?(@.active == true)].id"])
def test_the_steps_a_path_takes_grow_with_the_data_not_faster(path: str) -> None:
    def document(n: int) -> str:
        return json.dumps([{"id": i, "active": i % 2 == 0} for i in range(n)])

    # Within 20 steps an element, for 1,000 elements and for 8,000.
    assert len(loop_values(document(1_000), path, max_steps=20_000)) in (500, 1_000)
    assert len(loop_values(document(8_000), path, max_steps=160_000)) in (4_000, 8_000)
    with pytest.raises(LoopSourceError, match="takes more than 1000 steps"):
        loop_values(document(1_000), path, max_steps=1_000)
