"""Tree versions: a changed tree is a new version, and a run finishes on the one it started on."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine import Engine, RunStatus, TaskStatus, TreeKey, TreeNotFound

from .support import small_tree, start_small
from .test_routines import VISITOR, greet, welcome

KEY = TreeKey("Tests", "Semantics", "Approval")


def approval(after: str = "Approved") -> dict[str, Any]:
    """Start -> Review (defers) -> one echo node, whose name and text change between versions."""
    return small_tree(
        "Approval",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Review"}]},
            "Review": {
                "handler": "utilities_defer_v1",
                "defers": True,
                "connectors": [{"to": after}],
            },
            after: {"handler": "utilities_echo_v1", "parameters": {"input": f"{after}!"}},
        },
    )


def version_rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT version, status FROM tree_versions WHERE name = 'Approval'")
        )
        return sorted((row[0], row[1]) for row in rows)


def test_a_changed_tree_is_a_new_version_and_an_unchanged_one_is_not(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(approval())
        assert engine.tree_version(KEY) == 1
        engine.load_tree(approval())
        assert engine.tree_version(KEY) == 1
        engine.load_tree(approval("Accepted"))
        assert engine.tree_version(KEY) == 2
        engine.load_tree(approval("Accepted"))
        assert engine.tree_version(KEY) == 2
        engine.load_tree(approval())  # back to the first content: a new version all the same
        assert version_rows(engine) == [(1, "Active"), (2, "Active"), (3, "Active")]


def test_reloading_the_same_text_after_a_restart_keeps_the_version(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(approval())
        engine.load_tree(approval("Accepted"))
    with Engine(database_url) as restarted:
        restarted.load_tree(approval("Accepted"))
        assert restarted.tree_version(KEY) == 2
        assert version_rows(restarted) == [(1, "Active"), (2, "Active")]


def test_a_run_deferred_on_version_1_finishes_on_version_1(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(approval())
        old = start_small(engine, "Approval")
        engine.load_tree(approval("Accepted"))
        new = start_small(engine, "Approval")
        for run_id in (old, new):
            engine.create_deferred(token=engine.get_run(run_id).task("Review").token or "")
        engine.run_until_idle()
        first, second = engine.get_run(old), engine.get_run(new)
        assert (first.tree_version, second.tree_version) == (1, 2)
        assert [t.name for t in first.tasks] == ["Start", "Review", "Approved"]
        assert first.task("Approved").results == {"output": "Approved!"}
        assert [t.name for t in second.tasks] == ["Start", "Review", "Accepted"]
        assert first.status is second.status is RunStatus.COMPLETED
        assert set(engine.tree_of_run(first).nodes) == {"Start", "Review", "Approved"}
        assert set(engine.tree_of_run(second).nodes) == {"Start", "Review", "Accepted"}
        assert engine.tree_of_run(first).definition == approval()


def test_a_run_finishes_on_its_version_after_a_restart_that_loaded_only_a_newer_one(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(approval())
        run_id = start_small(engine, "Approval")
        token = engine.get_run(run_id).task("Review").token or ""
    with Engine(database_url) as restarted:  # version 1 is only in the database now
        restarted.load_tree(approval("Accepted"))
        restarted.create_deferred(token=token)
        restarted.run_until_idle()
        run = restarted.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert [t.name for t in run.tasks] == ["Start", "Review", "Approved"]
        assert run.tree_version == 1
        assert restarted.tree_of_run(run).definition == approval()


def test_an_inactive_version_refuses_new_runs_and_lets_old_ones_finish(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(approval())
        run_id = start_small(engine, "Approval")
        engine.load_tree(approval() | {"status": "Inactive"})
        with pytest.raises(TreeNotFound, match="the tree is Inactive"):
            engine.create_start(source_name="Tests", source_group="Semantics", tree_name="Approval")
        engine.create_deferred(token=engine.get_run(run_id).task("Review").token or "")
        engine.run_until_idle()
        assert engine.get_run(run_id).status is RunStatus.COMPLETED


def _deferring_greet(greeting: str) -> dict[str, Any]:
    """The greeting routine with a review before it returns, so its run can be held open."""
    tree = greet(greeting)
    tree["nodes"]["Compose"]["connectors"] = [{"to": "Review"}]
    tree["nodes"]["Review"] = {
        "handler": "utilities_defer_v1",
        "defers": True,
        "connectors": [{"to": "Return"}],
    }
    return tree


def test_a_routine_run_finishes_on_the_routine_version_it_was_called_on(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(_deferring_greet("Hello"))
        engine.load_tree(welcome())
        old = start_small(engine, "Welcome", results=VISITOR)
        engine.load_tree(_deferring_greet("Welcome"))
        new = start_small(engine, "Welcome", results=VISITOR)
        children = [engine.get_run(r).children[0].run_id for r in (old, new)]
        assert [engine.get_run(c).tree_version for c in children] == [1, 2]
        for child in children:
            engine.create_deferred(token=engine.get_run(child).task("Review").token or "")
        engine.run_until_idle()
        assert [engine.get_run(r).task("Announce").results["output"] for r in (old, new)] == [
            "Hello, Ada!",
            "Welcome, Ada!",
        ]
        assert engine.get_run(old).task("Greet Visitor").status is TaskStatus.CLOSED
