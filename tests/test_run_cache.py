"""A worker keeps a run's state between its batches, and never uses it once the run moved on.

A big loop is claimed in many batches; the runner reuses the state its last commit left instead of
reading every task row again (engine.processing.run_cache). These tests have other engines process
batches of the same run in between, and a worker lose its lease, and check that every iteration
still runs exactly once and the tail sees every result. What is kept is bounded by count and by
estimated bytes: states beyond either go, the least recently kept first, and the estimate follows
what a state holds in memory.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import BadRequest, Engine, RunStatus, SourceInfo, TaskStatus
from engine.processing.run_cache import DEFAULT_BYTES, DEFAULT_RUNS, RunCache
from engine.results_xml import write_results
from engine.run.state import RunState
from engine.store import runs as run_store
from engine.tree.model import Tree

from .support import TWO_STEPS, TWO_STEPS_KEY, small_tree

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


@pytest.fixture(scope="module")
def numbers_tree() -> Iterator[Tree]:
    with Engine() as engine:
        yield engine.load_tree(NUMBERS)


def _state(tree: Tree, run_id: int = 1, document: str = "") -> RunState:
    """A state holding ``document`` as an input: the cache holds it, counts it, hands it back."""
    return RunState(
        id=run_id,
        tree=tree,
        tree_version_id=1,
        status=RunStatus.STARTED,
        source=SourceInfo("Tests", "Semantics", ""),
        inputs={"Doc": document},
        values={},
        active_errors=0,
    )


def test_a_kept_state_is_given_only_at_its_revision_and_only_once(numbers_tree: Tree) -> None:
    cache = RunCache(capacity=2)
    one, two, three = (_state(numbers_tree, n) for n in (1, 2, 3))
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


def test_states_beyond_the_byte_budget_go_least_recently_kept_first(numbers_tree: Tree) -> None:
    one, two, three = (_state(numbers_tree, n, "x" * 100_000) for n in (1, 2, 3))
    size = one.kept_bytes()
    cache = RunCache(capacity=10, max_bytes=2 * size + size // 2)  # room for two of them
    cache.keep(1, 1, one)
    cache.keep(2, 1, two)
    assert cache.run_ids() == [1, 2]
    assert cache.take(1, 1) is one  # reused by a batch, then kept again: the most recent now
    cache.keep(1, 2, one)
    cache.keep(3, 1, three)
    assert cache.run_ids() == [1, 3]  # two went, though it was kept after one
    assert cache.kept_bytes == 2 * size
    assert cache.take(2, 1) is None
    assert cache.take(1, 2) is one
    assert cache.kept_bytes == size


def test_a_state_larger_than_the_byte_budget_is_not_kept_and_evicts_nothing(
    numbers_tree: Tree,
) -> None:
    small, big = _state(numbers_tree, 1, "x" * 1_000), _state(numbers_tree, 2, "x" * 200_000)
    cache = RunCache(capacity=10, max_bytes=100_000)
    cache.keep(1, 1, small)
    cache.keep(2, 1, big)
    assert cache.run_ids() == [1]
    assert cache.take(2, 1) is None
    assert cache.take(1, 1) is small


DOC = "x" * 200_000


def test_runs_whose_states_do_not_all_fit_still_each_run_every_iteration_once(
    database_url: str,
) -> None:
    """Three loop runs, room for two states: the first kept goes; the others are reused."""
    with Engine() as probe:  # what one such state is estimated at
        probe.load_tree(NUMBERS)
        probe_run = probe.create_start(**KEY, results=write_results({"Doc": DOC})).run_id
        probe.runner.process(probe.runner.claim(1))
        size = _retake(probe, probe_run).kept_bytes()
    with Engine(database_url, run_cache_bytes=2 * size + size // 2, batch_size=64) as engine:
        engine.load_tree(NUMBERS)
        run_ids = [
            engine.create_start(**KEY, results=write_results({"Doc": DOC})).run_id for _ in range(3)
        ]
        for _ in run_ids:  # each Root: the loop's iterations are written, the state kept
            assert engine.runner.process(engine.runner.claim(1)) == 1
        cache = engine.runner.run_cache
        assert cache.run_ids() == run_ids[1:]
        assert cache.kept_bytes <= 2 * size + size // 2
        kept = {run_id: _retake(engine, run_id) for run_id in run_ids[1:]}
        engine.run_until_idle()
        for run_id in run_ids:
            _assert_every_iteration_once(engine, run_id)
            assert engine.get_run(run_id).inputs == {"Doc": DOC}
        for run_id, state in kept.items():  # the kept states are the ones that ran on
            assert len(state.tasks) == sum(_task_rows(engine, run_id).values())


def _retake(engine: Engine, run_id: int) -> RunState:
    """The state kept for a run, put back as it was: to see that the next batch uses it."""
    with engine.database.read() as connection:
        revision = connection.execute(
            sa.text("SELECT revision FROM runs WHERE id = :r"), {"r": run_id}
        ).scalar_one()
    state = engine.runner.run_cache.take(run_id, revision)
    assert state is not None
    engine.runner.run_cache.keep(run_id, revision, state)
    return state


@pytest.mark.parametrize(
    "inputs",
    [
        {"Doc": "x" * 400_000},
        {f"Field {n}": f"value {n}" for n in range(8_000)},
    ],
    ids=["one-long-value", "many-short-values"],
)
def test_a_states_estimate_follows_what_it_holds_in_memory(inputs: dict[str, str]) -> None:
    """Within a factor of 1.5 of what building it from its rows allocates, for both shapes."""
    with Engine() as engine:
        engine.load_tree(NUMBERS)
        run_id = engine.create_start(**KEY, results=write_results(inputs)).run_id
        engine.runner.process(engine.runner.claim(1))  # the loop's tasks, each with results
        tree = engine.tree_of_run(engine.get_run(run_id))
        _read_state(engine, run_id, tree)  # compiles the statements: what is kept is measured
        gc.collect()
        tracemalloc.start()
        try:
            state = _read_state(engine, run_id, tree)
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(state.tasks) == 2 + COUNT
        assert held / 1.5 <= state.kept_bytes() <= held * 1.5


def _read_state(engine: Engine, run_id: int, tree: Tree) -> RunState:
    with engine.database.read() as connection:
        row = run_store.load_runs(connection, [run_id])[run_id]
        tasks = run_store.load_tasks(connection, [run_id])[run_id]
        return RunState.from_rows(row, tree, tasks, {})


@pytest.mark.parametrize(
    ("setting", "value"),
    [("run_cache_runs", -1), ("run_cache_bytes", -1), ("run_cache_bytes", 1.5)],
)
def test_bad_cache_settings_are_refused_naming_them_and_open_nothing(
    tmp_path: Path, setting: str, value: object
) -> None:
    database = tmp_path / "never.db"
    with pytest.raises(BadRequest) as refused:
        Engine(f"sqlite:///{database}", **{setting: value})  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"Invalid {setting}: expected a whole number of 0 or more, not {value!r}"
    )
    assert not database.exists()


def test_the_default_bounds_are_256_states_and_256_mib() -> None:
    assert (DEFAULT_RUNS, DEFAULT_BYTES) == (256, 256 * 2**20)
    with Engine() as engine:
        cache = engine.runner.run_cache
        assert (cache.capacity, cache.max_bytes) == (DEFAULT_RUNS, DEFAULT_BYTES)


def _run_states() -> int:
    return sum(1 for item in gc.get_objects() if isinstance(item, RunState))


def test_a_finished_run_without_loops_or_retries_leaves_its_state_to_no_collector(
    database_url: str,
) -> None:
    """The step's objects hold no cycle through the run's state: it goes when the step ends,
    without waiting for the garbage collector (which, until then, would walk it again and
    again while a batch is processed)."""
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.create_start(**TWO_STEPS_KEY)
        engine.run_until_idle()  # the first run builds what every run reuses
        gc.collect()
        gc.disable()
        try:
            before = _run_states()
            run_id = engine.create_start(**TWO_STEPS_KEY).run_id
            assert engine.run_until_idle() == 1
            left = _run_states()
        finally:
            gc.enable()
        assert engine.get_run(run_id).status is RunStatus.COMPLETED
        assert left == before
