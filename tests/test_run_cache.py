"""A worker keeps a run's state between its batches, and never uses it once the run moved on.

A big loop is claimed in many batches; the runner reuses the state its last commit left instead of
reading every task row again (engine.processing.run_cache). These tests have other engines process
batches of the same run in between, and a worker lose its lease, and check that every iteration
still runs exactly once and the tail sees every result.
"""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from engine import Engine, RunStatus, TaskStatus
from engine.processing.run_cache import RunCache
from engine.run.state import RunState

from .support import small_tree

KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Numbers"}
COUNT = 12
NUMBERS = small_tree(
    "Numbers",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Each"}]},
        "Each": {
            "handler": "system_loop_head_v1",
            "parameters": {
                "data_source": json.dumps(list(range(COUNT))),
                "loop_path": "$[*]",
                "var_name": "n",
            },
            "connectors": [{"to": "Done"}, {"to": "Body"}],
        },
        "Body": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ n }}"},
            "connectors": [{"to": "Done"}],
        },
        "Done": {
            "handler": "system_loop_tail_v1",
            "parameters": {"type": "All"},
            "connectors": [{"to": "After"}],
        },
        "After": {
            "handler": "utilities_echo_v1",
            "parameters": {
                "input": "{% for i, r in iterations['Body'].items() %}{{ r['output'] }};"
                "{% endfor %}"
            },
        },
    },
)
EVERY_RESULT = "".join(f"{n};" for n in range(COUNT))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _task_rows(engine: Engine, run_id: int) -> Counter[tuple[str, str, str]]:
    """(node, loop index, status) of every task row of the run, counted."""
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT node, loop_index, status FROM tasks WHERE run_id = :r"), {"r": run_id}
        )
        return Counter((row.node, row.loop_index, row.status) for row in rows)


def _assert_every_iteration_once(engine: Engine, run_id: int) -> None:
    run = engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.errors
    assert run.errors == ()
    rows = _task_rows(engine, run_id)
    bodies = {key: n for key, n in rows.items() if key[0] == "Body"}
    assert bodies == {("Body", f"/{i}", TaskStatus.CLOSED.value): 1 for i in range(COUNT)}
    assert rows[("Done", "/", TaskStatus.CLOSED.value)] == 1
    assert sum(n for key, n in rows.items() if key[0] in ("Done", "After")) == 2
    assert [run.task("Body", f"/{i}").results for i in range(COUNT)] == [
        {"output": str(i)} for i in range(COUNT)
    ]
    assert run.task("After").results == {"output": EVERY_RESULT}


def test_two_engines_taking_turns_on_one_loop_run_each_iteration_once(database_url: str) -> None:
    with Engine(database_url) as first, Engine(database_url) as second:
        first.load_tree(NUMBERS)
        run_id = first.create_start(**KEY).run_id
        turns = 0
        while True:
            engine = (first, second)[turns % 2]
            claim = engine.runner.claim(3)
            if not claim.triggers:
                break
            engine.runner.process(claim)
            turns += 1
        assert turns > 4  # both engines processed several batches of the run
        assert len(first.runner.run_cache) + len(second.runner.run_cache) <= 1
        _assert_every_iteration_once(first, run_id)


def test_a_batch_that_lost_its_lease_leaves_no_state_behind(database_url: str) -> None:
    clock = Clock()
    with (
        Engine(database_url, clock=clock, lease_seconds=10) as slow,
        Engine(database_url, clock=clock, lease_seconds=10) as taker,
    ):
        slow.load_tree(NUMBERS)
        run_id = slow.create_start(**KEY).run_id
        assert slow.runner.process(slow.runner.claim(1)) == 1  # Root: the loop's triggers
        assert slow.runner.process(slow.runner.claim(3)) == 3
        assert len(slow.runner.run_cache) == 1
        late = slow.runner.claim(3)
        clock.now += 20  # the slow claim's leases run out; another engine takes them
        taken = taker.runner.claim(3)
        assert [t.id for t in taken.triggers] == [t.id for t in late.triggers]
        assert slow.runner.process(late) == 0
        assert len(slow.runner.run_cache) == 0
        assert taker.runner.process(taken) == 3
        while slow.runner.process(slow.runner.claim(5)):
            pass
        _assert_every_iteration_once(slow, run_id)


def test_one_engine_alone_reuses_the_state_and_gets_the_same_results(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(NUMBERS)
        run_id = engine.create_start(**KEY).run_id
        engine.runner.process(engine.runner.claim(2))
        assert len(engine.runner.run_cache) == 1
        with engine.database.read() as connection:
            revision = connection.execute(
                sa.text("SELECT revision FROM runs WHERE id = :r"), {"r": run_id}
            ).scalar_one()
        kept = engine.runner.run_cache.take(run_id, revision)
        assert kept is not None and kept.id == run_id
        engine.runner.run_cache.keep(run_id, revision, kept)
        while engine.runner.process(engine.runner.claim(2)):
            pass
        _assert_every_iteration_once(engine, run_id)
        assert len(engine.runner.run_cache) == 0  # a finished run is not kept


def _state() -> RunState:
    """A bare state: the cache only holds and hands it back."""
    return RunState.__new__(RunState)


def test_a_kept_state_is_given_only_at_its_revision_and_only_once() -> None:
    cache = RunCache(capacity=2)
    one, two, three = _state(), _state(), _state()
    cache.keep(1, 5, one)
    assert cache.take(1, 6) is None
    assert cache.take(1, 5) is None  # a mismatch dropped it
    cache.keep(1, 5, one)
    assert cache.take(1, 5) is one
    assert cache.take(1, 5) is None  # taken: a second batch cannot share it
    cache.keep(1, 1, one)
    cache.keep(2, 1, two)
    cache.keep(3, 1, three)  # over capacity: the least recently kept goes
    assert len(cache) == 2
    assert cache.take(1, 1) is None
    assert cache.take(3, 1) is three
