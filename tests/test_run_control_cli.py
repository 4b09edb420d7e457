"""``treeflow runs cancel``, ``runs again`` and ``runs trigger``, run as the installed script."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine, RunStatus, TriggerAction

from .support import run_treeflow

TREE = """\
source: Tests
group: CLI
name: Approval
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Approve
  Approve:
    handler: utilities_defer_v1
    defers: true
    connectors:
      - to: Notify
  Notify:
    handler: utilities_echo_v1
    parameters:
      input: "{{ inputs['Name'] }}: {{ results['Approve']['Status'] }}"
"""
NAME = '<results><result name="Name">Ada</result></results>'
APPROVED = '<results><result name="Status">Approved</result></results>'

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def trees(tmp_path: Path) -> Path:
    folder = tmp_path / "trees"
    folder.mkdir()
    (folder / "approval.yaml").write_text(TREE, encoding="utf-8")
    return folder


@pytest.fixture
def treeflow(tmp_path: Path, url: str, trees: Path) -> Treeflow:
    def call(*args: str) -> subprocess.CompletedProcess[str]:
        flags = ("--database", url, "--trees", str(trees))
        return run_treeflow(*args, *flags, cwd=tmp_path, env={"COLUMNS": "200"})

    return call


def _deferred_run(url: str, trees: Path) -> int:
    with Engine(url, trees=trees) as engine:
        trigger = engine.create_start(
            source_name="Tests", source_group="CLI", tree_name="Approval", results=NAME
        )
        engine.run_until_idle()
        return trigger.run_id


def test_runs_cancel_cancels_and_records_who_and_why(
    treeflow: Treeflow, url: str, trees: Path
) -> None:
    run_id = _deferred_run(url, trees)
    result = treeflow("runs", "cancel", str(run_id), "--reason", "withdrawn", "--by", "ops")
    assert result.returncode == 0, result.stderr
    assert "Cancelled" in result.stdout
    with Engine(url) as engine:
        assert engine.get_run(run_id).status is RunStatus.CANCELLED
        cancel = engine.cancel_run(run_id)  # the same trigger, as recorded
        assert (cancel.message, cancel.requested_by) == ("withdrawn", "ops")
    again = treeflow("runs", "cancel", "999")
    assert again.returncode == 1
    assert "Unable to locate a run with the id 999" in again.stderr


def test_runs_again_with_an_edited_input(treeflow: Treeflow, url: str, trees: Path) -> None:
    first = _deferred_run(url, trees)
    result = treeflow("runs", "again", str(first), "--input", "Name=Grace")
    assert result.returncode == 0, result.stderr
    with Engine(url) as engine:
        (newest, _) = engine.list_runs(limit=2)
        assert (newest.again_of, newest.inputs) == (first, {"Name": "Grace"})
    bad = treeflow("runs", "again", str(first), "--input", "Grace")
    assert bad.returncode == 2
    assert "'Grace' is not NAME=VALUE" in bad.stderr


def test_runs_trigger_resumes_the_run_at_the_node(
    treeflow: Treeflow, url: str, trees: Path
) -> None:
    run_id = _deferred_run(url, trees)
    missing = treeflow("runs", "trigger", str(run_id), "Approve", "--results", APPROVED)
    assert missing.returncode == 2  # --reason and --by are required
    result = treeflow(
        "runs",
        "trigger",
        str(run_id),
        "Approve",
        "--results",
        APPROVED,
        "--reason",
        "approved on the phone",
        "--by",
        "admin",
    )
    assert result.returncode == 0, result.stderr
    assert "Ada: Approved" in result.stdout
    with Engine(url) as engine:
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Notify").results == {"output": "Ada: Approved"}
        with engine.database.read() as connection:
            row = connection.execute(
                sa.text("SELECT requested_by, message, node FROM triggers WHERE action = :a"),
                {"a": TriggerAction.MANUAL.value},
            ).one()
        assert tuple(row) == ("admin", "approved on the phone", "Approve")
