"""``Engine.explain`` and ``treeflow runs why``: what each open thing of a real run waits for.

Every case runs a real tree on SQLite and PostgreSQL (the ``engine`` fixture), leaves it waiting
in one way, and checks the items: their kind, node, loop index, sentence and what is missing
(a join's arrivals and a loop tail's iterations are read back from the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import Engine, Waiting

from .support import APPROVED, REGISTRATION, run_treeflow, small_tree, start, start_small

REPO = Path(__file__).resolve().parents[1]
TREES = REPO / "trees"
SHOP = {"source_name": "Kinetic Request", "source_group": "Shop > Orders"}
DEFER = {"handler": "utilities_defer_v1", "defers": True}


def echo(text: str, *to: str) -> dict[str, object]:
    return {
        "handler": "utilities_echo_v1",
        "parameters": {"input": text},
        "connectors": [{"to": name} for name in to],
    }


def kinds(items: tuple[Waiting, ...]) -> list[tuple[str, str, str]]:
    return [(item.kind, item.node, item.loop_index) for item in items]


def test_a_deferral_waits_for_its_token(engine: Engine) -> None:
    run_id = start(engine, source_id="R-1")
    explanation = engine.explain(run_id)
    token = engine.get_run(run_id).open_tokens["Review"]
    assert explanation.summary == f"run {run_id} is Started: 1 open"
    assert explanation.waiting == (
        Waiting(
            "deferral",
            "Review",
            "/",
            f"a createDeferred Complete (or Update) with its token {token}",
            engine.get_run(run_id).task("Review").id,
            token=token,
        ),
    )


def test_a_finished_run_has_nothing_open(engine: Engine) -> None:
    run_id = start(engine)
    token = engine.get_run(run_id).open_tokens["Review"]
    engine.create_deferred(token=token, action="Complete", results=APPROVED)
    engine.run_until_idle()
    explanation = engine.explain(run_id)
    assert (explanation.status, explanation.waiting) == ("Completed", ())
    assert explanation.summary == f"run {run_id} is Completed: nothing is open"


def test_a_staged_run_waits_for_a_worker(engine: Engine) -> None:
    trigger = engine.create_start(**REGISTRATION)
    [item] = engine.explain(trigger.run_id).waiting
    assert (item.kind, item.node, item.waits_for) == (
        "start",
        "Start",
        "a worker to process its start",
    )


def test_a_join_names_the_connectors_that_have_not_fired(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Join",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": n} for n in "ABC"]},
                "A": {**DEFER, "connectors": [{"to": "Both"}]},
                "B": echo("b", "Both"),
                "C": echo("c"),
                "Both": {"handler": "system_join_v1", "parameters": {"type": "All"}},
            },
        )
    )
    run_id = start_small(engine, "Join")
    waiting = engine.explain(run_id).waiting
    assert kinds(waiting) == [("deferral", "A", "/"), ("join", "Both", "/")]
    join = waiting[1]
    assert join.waits_for == (
        "2 of 2 incoming connectors (type All); arrived from B; not yet from A (Deferred)"
    )
    assert join.missing == ("A (Deferred)",)


def test_a_junction_names_the_open_tasks_of_its_region(engine: Engine) -> None:
    trigger = engine.create_start(
        source_name="Kinetic Request",
        source_group="IT > Equipment",
        tree_name="Provision Equipment",
        results="<results><result name='Employee'>Ken</result><result name='Office'>Yes</result>"
        "<result name='Laptop'>Yes</result><result name='Phone'>No</result></results>",
    )
    engine.run_until_idle()
    waiting = engine.explain(trigger.run_id).waiting
    assert kinds(waiting) == [
        ("deferral", "Office Work Order", "/"),
        ("deferral", "Laptop Work Order", "/"),
        ("junction", "Equipment Ready", "/"),
    ]
    assert waiting[2].waits_for == (
        "every branch from Review Request to finish; still open: Office Work Order / (Deferred),"
        " Laptop Work Order / (Deferred)"
    )
    token = engine.get_run(trigger.run_id).open_tokens["Office Work Order"]
    engine.create_deferred(token=token, action="Complete", results=None)
    engine.run_until_idle()
    assert engine.explain(trigger.run_id).waiting[-1].missing == ("Laptop Work Order / (Deferred)",)


def test_a_loop_tail_names_the_iterations_missing(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Loop",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
                "Each": {
                    "handler": "system_loop_head_v1",
                    "parameters": {"data_source": '["a", "b", "c"]', "loop_path": "$[*]"},
                    "connectors": [{"to": "Ask"}, {"to": "Done"}],
                },
                "Ask": {**DEFER, "connectors": [{"to": "Done"}]},
                "Done": {"handler": "system_loop_tail_v1", "parameters": {"type": "All"}},
            },
        )
    )
    run_id = start_small(engine, "Loop")
    run = engine.get_run(run_id)
    engine.create_deferred(token=run.task("Ask", "/1").token or "", action="Complete", results=None)
    engine.run_until_idle()
    waiting = engine.explain(run_id).waiting
    assert kinds(waiting) == [
        ("deferral", "Ask", "/0"),
        ("deferral", "Ask", "/2"),
        ("loop tail", "Done", "/"),
    ]
    assert waiting[2].waits_for == "3 of 3 iterations of Each (type All); 1 arrived; not yet /0, /2"
    assert waiting[2].missing == ("/0", "/2")


def test_a_wait_says_when_its_timer_is_due(database_url: str) -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC).timestamp()
    with Engine(database_url, trees=TREES, clock=lambda: now) as engine:
        run_id = start(engine, {**SHOP, "tree_name": "Cooling Off Period"}, source_id="O-1")
        [item] = engine.explain(run_id).waiting
    assert (item.kind, item.node, item.due_at) == (
        "wait",
        "Cooling Off",
        "2026-05-04T13:00:00+00:00",
    )
    assert item.waits_for == (
        "its timer, due at 2026-05-04T13:00:00+00:00 (in 3600s), or a Complete with its token"
    )


@pytest.fixture
def routine_engine(database_url: str) -> Iterator[Engine]:
    with Engine(database_url) as engine:
        engine.load_tree(
            small_tree(
                "Ask Someone",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Ask"}]},
                    "Ask": {**DEFER, "connectors": [{"to": "Return"}]},
                    "Return": {"handler": "system_tree_return_v1"},
                },
            )
            | {"type": "routine", "definition_id": "routine_ask_v1", "inputs": [], "outputs": []}
        )
        engine.load_tree(
            small_tree(
                "Caller",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Call"}]},
                    "Call": {"handler": "routine_ask_v1"},
                },
            )
        )
        yield engine


def test_a_routine_call_names_its_child_run_and_explains_it(routine_engine: Engine) -> None:
    run_id = start_small(routine_engine, "Caller")
    explanation = routine_engine.explain(run_id)
    [call] = explanation.waiting
    [child] = explanation.children
    assert (call.kind, call.node, call.child_run_id) == ("routine call", "Call", child.run_id)
    assert call.waits_for == f"routine run {child.run_id} (Ask Someone, Started) to return"
    assert kinds(child.waiting) == [("deferral", "Ask", "/")]


def test_an_active_error_waits_for_a_resolution(engine: Engine) -> None:
    run_id = start(engine, {**SHOP, "tree_name": "Confirm Order"})
    waiting = engine.explain(run_id).waiting
    assert kinds(waiting) == [("error", "Reserve Stock", "/"), ("error", "Confirm Order", "/")]
    error = engine.get_run(run_id).errors[0]
    assert waiting[0].waits_for == (
        f"a resolution of Node Parameter Error {error.id} (Retry Task, Skip Task, Do Nothing): "
        f"{error.summary}"
    )


def test_treeflow_runs_why_prints_the_explanation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'why.db'}"
    with Engine(url, trees=TREES) as engine:
        run_id = start(engine)
        token = engine.get_run(run_id).open_tokens["Review"]
    wide = {"COLUMNS": "200", "NO_COLOR": "1"}
    result = run_treeflow("runs", "why", str(run_id), "--database", url, cwd=tmp_path, env=wide)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"run {run_id} is Started: 1 open"
    row = next(line for line in lines if "deferral" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "deferral",
        "Review",
        "/",
        f"a createDeferred Complete (or Update) with its token {token}",
    ]
    missing = run_treeflow("runs", "why", "99", "--database", url, cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: Unable to locate a run with the id 99"
