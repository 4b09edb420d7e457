"""Kinetic Data's own Ruby SDK (``kinetic_sdk``, unmodified) against a live ``treeflow serve``,
on SQLite and PostgreSQL: run_tree, find_runs with tasks, complete_deferred_task, find_trees,
find_tree, find_routines, import_tree of a Kinetic XML export, export_tree, find_handlers,
find_sources, find_errors, delete_run (of the completed run) and engine_info, all with the SDK's
default headers (HTTP Basic) and an ``app_server_url`` ending in ``/kinetic-task``.

The SDK is found at ``TREEFLOW_TEST_KINETIC_SDK`` (by default the vendored copy beside the
repository); without Ruby or without the SDK the test skips, and in CI it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, RunNotFound
from engine.auth import Accounts

from .conftest import IN_CI, REPO, TREES
from .support import treeflow_serve

SDK = Path(
    os.environ.get("TREEFLOW_TEST_KINETIC_SDK", REPO.parent / "shared/vendor/kinetic-sdk-rb")
)
DRIVER = Path(__file__).parent / "kinetic_sdk" / "drive.rb"
EXPORT = Path(__file__).parent / "fixtures" / "kinetic" / "onboarding-tree.xml"
PASSWORD = "correct horse battery"


@pytest.fixture
def ruby() -> str:
    found = shutil.which("ruby")
    missing = None if found else "Ruby is not installed (apt-get install ruby)"
    if found and not (SDK / "lib" / "kinetic_sdk.rb").is_file():
        missing = f"the Kinetic SDK is not at {SDK} (set TREEFLOW_TEST_KINETIC_SDK)"
    if missing is not None:
        if IN_CI:
            pytest.fail(f"{missing}: CI must run the Kinetic SDK test")
        pytest.skip(missing)
    assert found is not None
    return found


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    with Engine(database_url) as engine:
        Accounts(engine).add_user("configurator", PASSWORD, role="admin")
    with treeflow_serve(database_url, TREES, cwd=tmp_path) as url:
        yield url


def drive(ruby: str, url: str, export_dir: Path) -> dict[str, Any]:
    process = subprocess.Popen(
        [ruby, str(DRIVER), str(SDK), url, "configurator", PASSWORD, str(EXPORT), str(export_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=180)
    finally:
        _stop(process)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_kinetic_sdk_runs_unchanged_against_treeflow_serve(
    ruby: str, served: str, database_url: str, tmp_path: Path
) -> None:
    out = drive(ruby, served, tmp_path / "export")

    calls = {
        name: call for name, call in out.items() if isinstance(call, dict) and "status" in call
    }
    assert {name: call for name, call in calls.items() if call["status"] != 200} == {}
    assert len(calls) == 12
    assert out["engine_info"]["content"]["engine"]["status"] == "Running"
    assert "Imported the tree" in out["import_tree"]["content"]["message"]

    titles = [tree["title"] for tree in out["find_trees"]["content"]["trees"]]
    assert "Kinetic Request :: HR > Onboarding :: Onboard Employee" in titles
    assert "Kinetic Request :: Service Desk :: Ticket Progress" in titles
    tree = out["find_tree"]["content"]
    assert (tree["sourceGroup"], tree["name"], tree["type"]) == (
        "HR > Onboarding",
        "Onboard Employee",
        "Tree",
    )
    routines = out["find_routines"]["content"]["trees"]
    assert [r["definitionId"] for r in routines] == ["routine_compose_welcome_v1"]

    exported = out["export_tree"]
    [file] = exported["files"]
    assert file.startswith("/sources/kinetic-request/trees/") and file.endswith(".xml"), file
    assert "<name>Onboard Employee</name>" in exported["content"]
    assert 'definition_id="utilities_defer_v1"' in exported["content"]

    run_id = out["run_id"]
    assert out["run_tree"]["content"]["run"]["status"] == "Staged"
    [run] = [r for r in out["find_runs"]["content"]["runs"] if r["id"] == run_id]
    assert any(t["nodeName"] == "Work Ticket" and t["token"] == out["token"] for t in run["tasks"])
    assert "Completed the deferred task" in out["complete_deferred_task"]["content"]["message"]

    handler_ids = {h["definitionId"] for h in out["find_handlers"]["content"]["handlers"]}
    assert {"system_start_v1", "utilities_defer_v1", "utilities_echo_v1"} <= handler_ids
    sources = [s["name"] for s in out["find_sources"]["content"]["sourceRoots"]]
    assert "Kinetic Request" in sources
    assert out["find_errors"]["content"]["errors"] == []

    completed = out["completed"]["run"]
    assert completed is not None, "the run did not complete"
    assert {t["nodeName"]: t["status"] for t in completed["tasks"]}["Work Ticket"] == "Closed"
    deleted = out["delete_run"]["content"]["run"]
    assert (deleted["id"], deleted["status"]) == (run_id, "Completed")
    with Engine(database_url) as engine, pytest.raises(RunNotFound):
        engine.get_run(run_id)
