"""Deploying trees: one bad file never takes the others down, and every process starts runs on the
version that is current in the database, not on the one it remembers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from engine import Engine, Problem, RunStatus, TaskStatus, TreeError, TreeKey, TreeNotFound

from .support import APPROVED, small_tree, start_small
from .test_versions import KEY, approval

GOOD = small_tree(
    "Echo",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Say"}]},
        "Say": {"handler": "utilities_echo_v1", "parameters": {"input": "hello"}},
    },
)
TYPO = "utilities_echo_v9"  # a handler nobody provides


def write_tree(folder: Path, name: str, tree: dict[str, object]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def with_typo(tree: dict[str, object]) -> dict[str, object]:
    """``tree`` with its first non-start node's handler misspelt."""
    nodes = dict(tree["nodes"])  # type: ignore[call-overload]
    name = next(n for n in nodes if n != "Start")
    nodes[name] = {**nodes[name], "handler": TYPO}
    return {**tree, "nodes": nodes}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    trees = tmp_path / "trees"
    trees.mkdir()
    write_tree(trees, "echo.yaml", GOOD)
    return trees


# -- one invalid file ------------------------------------------------------------------------------


def test_an_engine_serves_every_valid_tree_and_lists_the_refused_file(
    database_url: str, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = write_tree(folder, "approval.yaml", with_typo(approval()))

    with (
        caplog.at_level(logging.ERROR, logger="treeflow"),
        Engine(database_url, trees=folder) as engine,
    ):
        run = engine.get_run(start_small(engine, "Echo"))
        with pytest.raises(TreeNotFound):  # never stored: nothing to start
            start_small(engine, "Approval")

    assert run.status is RunStatus.COMPLETED
    assert [t.key.name for t in engine.trees] == ["Echo"]
    assert [(p.file, p.node) for p in engine.tree_problems] == [(str(bad), "Review")]
    assert f"unknown handler {TYPO!r}" in engine.tree_problems[0].message
    refused = [r.getMessage() for r in caplog.records if r.name == "treeflow"]
    assert refused == [f"tree file refused: {engine.tree_problems[0]}"]


def test_strict_trees_refuses_the_whole_folder_naming_the_problem(
    database_url: str, folder: Path
) -> None:
    bad = write_tree(folder, "approval.yaml", with_typo(approval()))

    with pytest.raises(TreeError) as refused:
        Engine(database_url, trees=folder, strict_trees=True)

    assert [(p.file, p.node) for p in refused.value.problems] == [(str(bad), "Review")]


def test_a_broken_new_version_leaves_the_runs_of_the_old_one_running(
    database_url: str, folder: Path
) -> None:
    write_tree(folder, "approval.yaml", approval())
    with Engine(database_url, trees=folder) as engine:
        waiting = start_small(engine, "Approval")
        token = engine.get_run(waiting).task("Review").token
    write_tree(folder, "approval.yaml", with_typo(approval("Accepted")))

    with Engine(database_url, trees=folder) as restarted:
        restarted.create_deferred(token=token or "", results=APPROVED)
        restarted.run_until_idle()
        finished = restarted.get_run(waiting)
        later = restarted.get_run(start_small(restarted, "Approval"))

    assert [p.file for p in restarted.tree_problems] == [str(folder / "approval.yaml")]
    assert finished.status is RunStatus.COMPLETED
    assert finished.task("Approved").results == {"output": "Approved!"}
    # New runs start on the version that is stored, the last one that was valid.
    assert (later.tree_version, later.task("Review").status) == (1, TaskStatus.DEFERRED)


def test_two_files_of_one_tree_keep_the_first_and_refuse_the_second(
    database_url: str, folder: Path
) -> None:
    second = write_tree(folder, "z-echo-again.yaml", GOOD)

    with Engine(database_url, trees=folder) as engine:
        run = engine.get_run(start_small(engine, "Echo"))

    assert run.status is RunStatus.COMPLETED
    assert engine.tree_problems == (
        Problem(
            file=str(second),
            message=f"tree 'Tests :: Semantics :: Echo' is also defined in {folder / 'echo.yaml'}",
        ),
    )


# -- several processes on one database -----------------------------------------------------------


def test_a_version_deployed_by_another_engine_is_what_new_runs_start_on(database_url: str) -> None:
    with Engine(database_url) as first, Engine(database_url) as second:
        first.load_tree(approval())
        before = first.get_run(start_small(first, "Approval"))
        second.load_tree(approval("Accepted"))
        after = first.get_run(start_small(first, "Approval"))
        token = after.task("Review").token
        first.create_deferred(token=token or "", results=APPROVED)
        first.run_until_idle()
        done = first.get_run(after.id)

    assert (before.tree_version, after.tree_version) == (1, 2)
    assert done.task("Accepted").results == {"output": "Accepted!"}


def test_a_tree_another_engine_made_inactive_starts_no_run_here(database_url: str) -> None:
    inactive = {**approval(), "status": "Inactive"}
    with Engine(database_url) as first, Engine(database_url) as second:
        first.load_tree(approval())
        start_small(first, "Approval")
        second.load_tree(inactive)
        with pytest.raises(TreeNotFound, match="the tree is Inactive") as refused:
            first.create_start(source_name="Tests", source_group="Semantics", tree_name="Approval")
        runs = len(first.list_runs())

    assert refused.value.tree_name == KEY.name
    assert runs == 1  # nothing was written for the refused start


def test_an_instance_starts_on_the_process_version_another_engine_deployed(
    database_url: str,
) -> None:
    def process(text: str) -> dict[str, object]:
        tree = small_tree(
            "Intake",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Say"}]},
                "Say": {"handler": "utilities_echo_v1", "parameters": {"input": text}},
            },
        )
        return {**tree, "fields": {"Name": {}}}

    with Engine(database_url) as first, Engine(database_url) as second:
        first.load_tree(process("one"))
        second.load_tree(process("two"))
        instance = first.create_instance("intake", {"Name": "Ada"})
        first.run_until_idle()
        run = first.get_run(first.get_instance(instance.name).run_id)

    assert (run.tree_version, run.task("Say").results) == (2, {"output": "two"})
    assert TreeKey("Tests", "Semantics", "Intake") in {t.key for t in second.trees}
