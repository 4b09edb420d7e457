"""The worked examples in trees/: the routine call and the error resolved by Retry or Skip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import Engine, ErrorType, RunStatus, TaskStatus

from .conftest import TREES
from .support import run_treeflow, start

WELCOME = {
    "source_name": "Kinetic Request",
    "source_group": "HR > Starters",
    "tree_name": "Welcome Starter",
}
ORDER = {
    "source_name": "Kinetic Request",
    "source_group": "Shop > Orders",
    "tree_name": "Confirm Order",
}
STARTER = (
    "<results><result name='Employee'>Ada</result><result name='Team'>Platform</result>"
    "<result name='Buddy'>Grace</result></results>"
)
KETTLE = "<results><result name='Item'>Kettle</result></results>"
LEEDS = "<results><result name='Warehouse'>Leeds</result></results>"


def test_welcome_starter_calls_its_routine_twice(engine: Engine) -> None:
    run = engine.get_run(start(engine, WELCOME, source_id="REQ-42", results=STARTER))
    assert run.status is RunStatus.COMPLETED
    assert run.task("Welcome Starter").results == {
        "Subject": "Welcome, Ada",
        "Body": "Welcome to Platform, Ada! Your request is REQ-42.",
    }
    assert run.task("Welcome Buddy").results["Body"] == (
        "Welcome to the team, Grace! Your request is REQ-42."
    )
    assert run.task("Send").results == {"output": "Welcome, Ada / Welcome, Grace"}
    assert [(c.tree_name, c.status) for c in run.children] == [
        ("Compose Welcome", RunStatus.COMPLETED),
        ("Compose Welcome", RunStatus.COMPLETED),
    ]


@pytest.mark.parametrize(
    ("action", "confirmation"),
    [("Retry Task", {"output": "Order ORD-7 ships from Leeds"}), ("Skip Task", {})],
)
def test_confirm_order_fails_early_and_is_resolved(
    engine: Engine, action: str, confirmation: dict[str, str]
) -> None:
    run = engine.get_run(start(engine, ORDER, source_id="ORD-7", results=KETTLE))
    assert run.task("Confirm Order").status is TaskStatus.FAILED
    [error] = run.errors
    assert error.type == ErrorType.NODE_PARAMETER.value
    assert error.summary == (
        "Parameter of node 'Confirm Order': missing key 'Warehouse' in \"Order {{ source.id }}"
        " ships from {{ results['Reserve Stock']['Warehouse'] }}\""
    )
    engine.create_deferred(token=run.open_tokens["Reserve Stock"], results=LEEDS)
    engine.run_until_idle()
    assert engine.get_run(run.id).status is RunStatus.FAILED  # nothing pending, error active
    engine.resolve_error(error.id, action, message="the warehouse answered")
    engine.run_until_idle()
    run = engine.get_run(run.id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Confirm Order").results == confirmation
    assert run.task("Notify Customer").results == {"output": "Your order ORD-7 is confirmed"}


def test_confirm_order_walk_through_on_the_command_line(tmp_path: Path) -> None:
    def treeflow(*args: str) -> str:
        result = run_treeflow(
            *args, "--database", "sqlite:///t.db", "--trees", str(TREES), cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    shown = treeflow("run", "Confirm Order", "--source-id", "ORD-7", "--results", KETTLE)
    [error_id] = re.findall(
        r"Node Parameter Error ([0-9a-f]{32}) at 'Confirm Order' \(Active\)", shown
    )
    [token] = re.findall(r"Reserve Stock is deferred; its token is ([0-9a-f]{40})", shown)
    treeflow("deferred", token, "--action", "Complete", "--results", LEEDS)
    resolved = treeflow("errors", "resolve", error_id, "--action", "Retry Task")
    assert "Run 1 of Confirm Order (version 1, source id 'ORD-7'): Completed" in resolved
    assert "output: Order ORD-7 ships from Leeds" in resolved
    assert f"Node Parameter Error {error_id} at 'Confirm Order' (Handled)" in resolved
