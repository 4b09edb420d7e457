"""Kinetic's conventions at load and run time, with exports written in Kinetic's own shapes.

``tests/fixtures/kinetic/``: ``approval-routine.xml`` (a routine id with no version suffix,
``utilities_defer_v1`` given ``deferral_value``), ``finish-routine.xml`` (a Start-only routine
with no return node) and ``submitted-tree.xml`` (a Request CE tree named after its event, which
calls both, gives a parameter the routine does not declare, and has a disconnected node and a
return node in a plain tree). What Kinetic accepts loads with warnings (file, node, line);
``strict`` refuses it. Only trees that declare ``process`` or ``fields`` are processes, so a
folder of dozens of ``Submitted`` trees loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine import Engine, RunStatus, TaskStatus
from engine.cli.worker import processing_settings
from engine.errors import TreeError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import convert_kinetic
from engine.tree.expressions import Expressions
from engine.tree.files import read_tree_files

from .support import run_treeflow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kinetic"
APPROVAL = FIXTURES / "approval-routine.xml"
FINISH = FIXTURES / "finish-routine.xml"
SUBMITTED = FIXTURES / "submitted-tree.xml"
LAPTOPS = "Submissions > services > laptop-request"


def yaml_of(export: Path, **options: str) -> str:
    return convert_kinetic(export.read_bytes(), file=export.name, **options).yaml()


def write_trees(folder: Path, *groups: str) -> Path:
    """The two routines, and the Submitted tree once per group (as a Request CE folder holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "approval.yaml").write_text(yaml_of(APPROVAL), encoding="utf-8")
    (folder / "finish.yaml").write_text(yaml_of(FINISH), encoding="utf-8")
    for index, group in enumerate(groups or (LAPTOPS,)):
        text = yaml_of(SUBMITTED, group=group)
        (folder / f"submitted-{index:02}.yaml").write_text(text, encoding="utf-8")
    return folder


def line_of(file: Path, fragment: str) -> int:
    lines = file.read_text(encoding="utf-8").splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if fragment in line]
    return number


def results(**values: str) -> str:
    items = "".join(f'<result name="{name}">{value}</result>' for name, value in values.items())
    return f"<results>{items}</results>"


def test_a_routine_id_without_a_version_suffix_is_a_routine_its_callers_call(
    tmp_path: Path,
) -> None:
    found = read_tree_files(
        [write_trees(tmp_path)], registry=HandlerRegistry(), expressions=Expressions()
    )
    assert found.problems == ()
    by_name = {tree.key.name: tree for tree in found.trees}
    assert by_name["Approval"].routine is not None
    assert by_name["Approval"].routine.definition_id == "routine_approval"
    call = by_name["Submitted"].nodes["Manager Approval"]
    assert (call.handler.definition_id, call.defers) == ("routine_approval", True)


def test_what_kinetic_accepts_is_a_warning_with_file_node_and_line(tmp_path: Path) -> None:
    folder = write_trees(tmp_path)
    found = read_tree_files([folder], registry=HandlerRegistry(), expressions=Expressions())
    submitted, finish = folder / "submitted-00.yaml", folder / "finish.yaml"

    assert found.problems == ()
    assert sorted(tree.key.name for tree in found.trees) == ["Approval", "Finish", "Submitted"]
    assert sorted((w.file, w.line, w.node, w.message) for w in found.warnings) == sorted(
        [
            (
                str(finish),
                line_of(finish, "nodes:"),
                None,
                "a routine without a system_tree_return_v1 node returns nothing: its callers'"
                " tasks stay Deferred until completed by their tokens",
            ),
            (
                str(submitted),
                line_of(submitted, "Priority:"),
                "Manager Approval",
                "parameter 'Priority' is not an input of routine 'routine_approval' (its"
                " inputs: Approver): it is not passed",
            ),
            (
                str(submitted),
                line_of(submitted, "  Old Notice:"),
                "Old Notice",
                "node is not reachable from the start node 'Start': it never runs",
            ),
            (
                str(submitted),
                line_of(submitted, "handler: system_tree_return_v1"),
                "Done",
                "system_tree_return_v1 ends a routine; this tree is not one (type: routine), so"
                " the node only closes",
            ),
        ]
    )


def test_strict_makes_every_warning_a_problem_and_refuses_those_files(tmp_path: Path) -> None:
    folder = write_trees(tmp_path)
    lenient = read_tree_files([folder], registry=HandlerRegistry(), expressions=Expressions())
    strict = read_tree_files(
        [folder], registry=HandlerRegistry(), expressions=Expressions(), strict=True
    )
    assert sorted(map(str, strict.problems)) == sorted(map(str, lenient.warnings))
    assert strict.refused == (str(folder / "finish.yaml"), str(folder / "submitted-00.yaml"))
    assert [tree.key.name for tree in strict.trees] == ["Approval"]


def test_an_imported_tree_calling_kinetic_routines_runs_as_kinetic_runs_it(
    database_url: str, tmp_path: Path
) -> None:
    with Engine(database_url, trees=write_trees(tmp_path)) as engine:
        assert engine.tree_problems == ()
        assert len(engine.tree_warnings) == 4
        trigger = engine.create_start(
            source_name="Kinetic Request CE",
            source_group=LAPTOPS,
            tree_name="Submitted",
            source_id="SUB-7",
            results=results(Manager="grace@example.com"),
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        [approval] = run.children
        child = engine.get_run(approval.run_id)
        # deferral_value (Kinetic's name) is the defer node's deferred_value; Priority, which
        # the routine does not declare, was not passed.
        assert child.inputs == {"Approver": "grace@example.com"}
        wait = child.task("Wait For Approver")
        assert wait.status is TaskStatus.DEFERRED
        assert wait.results["deferred_value"] == "grace@example.com"

        token = child.open_tokens["Wait For Approver"]
        engine.create_deferred(token=token, action="Complete", results=results(Decision="Approved"))
        engine.run_until_idle()

        run = engine.get_run(trigger.run_id)
        assert run.task("Manager Approval").results == {
            "Decision": "Approved",
            "Kept": "grace@example.com",
        }
        assert run.task("Order Laptop").results == {"output": "Approved by grace@example.com"}
        assert run.task("Done").status is TaskStatus.CLOSED  # a return with no caller: closes
        assert "Old Notice" not in {task.name for task in run.tasks}  # unreachable: never runs
        # The Start-only routine completes; with no return node its caller waits, as in Kinetic.
        finish = next(link for link in run.children if link.task_id == run.task("Finish").id)
        assert engine.get_run(finish.run_id).status is RunStatus.COMPLETED
        assert run.task("Finish").status is TaskStatus.DEFERRED


def test_an_engine_logs_the_warnings_and_strict_checks_refuses_the_files(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_trees(tmp_path)
    with (
        caplog.at_level(logging.WARNING, logger="treeflow"),
        Engine(database_url, trees=folder) as engine,
    ):
        warned = [str(w) for w in engine.tree_warnings]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert logged == [f"tree file warning: {w}" for w in warned]

    with Engine(database_url, trees=folder, strict_checks=True) as strict:
        assert strict.tree_warnings == ()
        assert sorted({p.file for p in strict.tree_problems}) == [
            str(folder / "finish.yaml"),
            str(folder / "submitted-00.yaml"),
        ]
        with pytest.raises(TreeError, match="it never runs"):
            strict.load_tree(yaml_of(SUBMITTED, group="Elsewhere"))


def test_a_folder_of_many_submitted_trees_loads_none_of_them_a_process(
    database_url: str, tmp_path: Path
) -> None:
    groups = [f"Submissions > services > form-{n}" for n in range(12)]
    groups += [f"Submissions > queue > task-{n}" for n in range(12)]
    folder = write_trees(tmp_path, *groups)
    with Engine(database_url, trees=folder) as engine:
        assert engine.tree_problems == ()
        names = [t.key for t in engine.trees if t.key.name == "Submitted"]
        assert sorted(key.source_group for key in names) == sorted(groups)
        # Trees that declare neither 'process' nor 'fields' are not processes.
        assert engine.list_processes() == []
        assert {tree.process for tree in engine.trees} == {""}


def test_validate_lists_warnings_and_exits_0_and_strict_makes_them_errors(
    tmp_path: Path,
) -> None:
    folder = write_trees(tmp_path / "trees")
    lenient = run_treeflow("validate", "trees", cwd=tmp_path, env={"COLUMNS": "40"})
    strict = run_treeflow("validate", "--strict", "trees", cwd=tmp_path, env={"COLUMNS": "40"})

    submitted = folder / "submitted-00.yaml"
    unreachable = (
        f"trees/submitted-00.yaml:{line_of(submitted, '  Old Notice:')}: node 'Old Notice':"
        " node is not reachable from the start node 'Start': it never runs"
    )
    assert lenient.returncode == 0, lenient.stderr
    assert f"warning {unreachable}" in lenient.stderr.splitlines()
    assert sum(line.startswith("warning ") for line in lenient.stderr.splitlines()) == 4
    assert lenient.stdout.count("ok ") == 3
    assert strict.returncode == 1
    assert f"error {unreachable}" in strict.stderr.splitlines()
    assert strict.stderr.splitlines()[-1] == "4 problem(s) in 2 of 3 file(s)"


@pytest.mark.parametrize(
    ("parameters", "kept"),
    [
        ({"deferral_value": "kinetic"}, "kinetic"),
        ({"deferred_value": "alias"}, "alias"),
        ({"deferral_value": "kinetic", "deferred_value": "alias"}, "kinetic"),
        ({}, ""),
    ],
    ids=["Kinetic's name", "the alias", "both: Kinetic's name wins", "neither"],
)
def test_the_defer_node_keeps_deferral_value_as_its_deferred_value(
    parameters: dict[str, str], kept: str
) -> None:
    tree = {
        "source": "Tests",
        "group": "Defer",
        "name": "Keep",
        "nodes": {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Wait"}]},
            "Wait": {"handler": "utilities_defer_v1", "defers": True, "parameters": parameters},
        },
    }
    with Engine() as engine:
        engine.load_tree(tree)
        trigger = engine.create_start(source_name="Tests", source_group="Defer", tree_name="Keep")
        engine.run_until_idle()
        wait = engine.get_run(trigger.run_id).task("Wait")
        assert wait.status is TaskStatus.DEFERRED
        assert wait.results == {"deferral_token": wait.token, "deferred_value": kept}


def test_import_kinetic_lists_the_warnings_and_succeeds(tmp_path: Path) -> None:
    folder = tmp_path / "trees"
    folder.mkdir()
    (folder / "approval.yaml").write_text(yaml_of(APPROVAL), encoding="utf-8")
    (folder / "finish.yaml").write_text(yaml_of(FINISH), encoding="utf-8")

    result = run_treeflow(
        "import-kinetic", str(SUBMITTED), "-o", "trees/submitted.yaml", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning ")]
    written = folder / "submitted.yaml"
    assert warnings[1] == (  # in file order: Priority, Old Notice, Done
        f"warning trees/submitted.yaml:{line_of(written, '  Old Notice:')}: node 'Old Notice':"
        " node is not reachable from the start node 'Start': it never runs"
    )
    assert len(warnings) == 3
    assert result.stderr.splitlines()[-1] == (
        "wrote trees/submitted.yaml: tree 'Submitted' (6 nodes), 0 kept as written"
    )
    assert "status" not in written.read_text(encoding="utf-8")  # it validates: it stays Active


def test_the_worker_and_serve_option_reaches_the_engine() -> None:
    assert processing_settings(64, 30.0, 0.5, (), 5, False, True)["strict_checks"] is True
    assert processing_settings(64, 30.0, 0.5, (), 5)["strict_checks"] is False
