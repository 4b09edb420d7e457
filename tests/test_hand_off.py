"""The hot path: a start claimed by its own accept, and consumers that write only when work is due.

Counted through SQLAlchemy's events on real databases: the commits of transactions (read or
write), the statements SQLAlchemy executes (claims, releases, reads: a step's inserts and closes
go to the driver directly, ``engine.store.bulk``) and, on SQLite, the transactions that took the
write lock (``BEGIN IMMEDIATE``, chosen in the ``begin`` event).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import (
    Engine,
    Handler,
    HandlerContext,
    RunStatus,
    StartCall,
    Trigger,
    TriggerStatus,
    hookimpl,
)
from engine.processing.hand_off import HandOff
from engine.processing.runner import Claim
from engine.store.queue import ClaimedTrigger

from .conftest import postgres_schema_url
from .fault_support import Workers
from .support import TWO_STEPS, TWO_STEPS_KEY, FixedClock, small_tree, wait_for

KEY = TWO_STEPS_KEY
TWO_STEPS_YAML = """source: Tests
group: Semantics
name: Two Steps
nodes:
  Start: {handler: system_start_v1, connectors: [{to: One}]}
  One:
    handler: utilities_echo_v1
    parameters: {input: "{{ source.id }}-1"}
    connectors: [{to: Two}]
  Two:
    handler: utilities_echo_v1
    parameters: {input: "{{ results['One']['output'] }}-2"}
"""
LATER = 3600.0  # past any lease these tests take
GATED_KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Gated"}
GATED = small_tree(
    "Gated",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Gate"}]},
        "Gate": {"handler": "tests_gate_v1"},
    },
)


class Gate:
    """A node handler that holds its worker until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def _hold(self, _context: HandlerContext) -> dict[str, str]:
        self.entered.set()
        assert self.opened.wait(60), "the test never opened the gate"
        return {}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_gate_v1", self._hold)]


@dataclass
class Traffic:
    """What an engine sent its database while it was watched."""

    commits: int = 0
    write_transactions: int = 0  # SQLite's: began with the write lock
    statements: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.split(None, 1)[0].upper() in ("UPDATE", "DELETE")]


@contextmanager
def watched(engine: Engine) -> Iterator[Traffic]:
    """Count what the engine sends its database: on SQLite at the driver (every connection's
    statement trace: its writes begin and commit there, not through SQLAlchemy), on PostgreSQL
    through SQLAlchemy's transaction events; the statements SQLAlchemy runs, on both."""
    traffic = Traffic()
    lock = threading.Lock()

    def commit(_connection: Any) -> None:
        with lock:
            traffic.commits += 1

    def begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get("treeflow_write", False):
            with lock:
                traffic.write_transactions += 1

    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        with lock:
            traffic.statements.append(text.strip())

    def traced(sql: str) -> None:
        said = sql.upper()
        with lock:
            if said.startswith("COMMIT"):
                traffic.commits += 1
            elif said.startswith("BEGIN IMMEDIATE"):
                traffic.write_transactions += 1

    drivers: list[Any] = []

    def trace(driver: Any, *_args: Any) -> None:
        driver.set_trace_callback(traced)
        drivers.append(driver)

    if engine.database.dialect == "sqlite":
        with engine.database.write() as connection:  # the one writer, kept open
            writer = connection.connection.driver_connection
        trace(writer)
        listeners: tuple[tuple[str, Any], ...] = (
            ("checkout", trace),
            ("before_cursor_execute", statement),
        )
    else:
        listeners = (("commit", commit), ("begin", begin), ("before_cursor_execute", statement))
    target = engine.database.engine  # its pool's events too ("checkout")
    for name, listener in listeners:
        sa.event.listen(target, name, listener)
    try:
        yield traffic
    finally:
        for name, listener in listeners:
            sa.event.remove(target, name, listener)
        for driver in drivers:
            driver.set_trace_callback(None)


def trigger_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.database.read() as connection:
        query = "SELECT id, status, attempts, lease_owner, engine FROM triggers ORDER BY id"
        return list(connection.execute(sa.text(query)).all())


def assert_completed_once(engine: Engine, run_ids: list[int]) -> None:
    """Every run Completed with its three tasks, its one trigger Closed on its first attempt."""
    with engine.database.read() as connection:
        tasks = dict(
            connection.execute(sa.text("SELECT run_id, count(*) FROM tasks GROUP BY run_id")).all()
        )
        triggers = connection.execute(
            sa.text("SELECT run_id, status, attempts FROM triggers ORDER BY run_id")
        ).all()
    assert {engine.get_run(r).status for r in run_ids} == {RunStatus.COMPLETED}
    assert {tasks[r] for r in run_ids} == {3}
    assert sorted(t[0] for t in triggers) == sorted(run_ids)
    assert {(t[1], t[2]) for t in triggers} == {("Closed", 1)}


def test_create_start_then_run_until_idle_commits_twice_and_claims_nothing(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.run_until_idle()  # this thread processes what it accepts from now on
        for number in range(3):
            with watched(engine) as traffic:
                trigger = engine.create_start(**KEY, source_id=f"R{number}")
                assert engine.run_until_idle() == 1
            # The accept (its run and trigger, claimed) and the step (tasks, close, status,
            # and the question whether anything else is due): no claim, no second claim.
            assert traffic.commits == 2, traffic.statements
            assert traffic.writes == []  # no claim: the accept wrote it
            if engine.database.dialect == "sqlite":
                assert traffic.write_transactions == 2
            run = engine.get_run(trigger.run_id)
            assert run.status is RunStatus.COMPLETED
            assert run.task("Two").results == {"output": f"R{number}-1-2"}
        closed = engine.get_trigger(trigger.id)
        assert (closed.status, closed.engine) == (TriggerStatus.CLOSED, engine.name)


def test_starts_accepted_together_are_handed_over_as_one_claim(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.run_until_idle()  # this thread processes what it accepts from now on
        with watched(engine) as traffic:
            outcomes = engine.create_starts(
                [StartCall(**KEY, source_id=f"B{number}") for number in range(5)]
            )
            assert engine.run_until_idle() == 5
        # One transaction accepts the five, claimed for this thread; one step processes them.
        assert traffic.commits == 2, traffic.statements
        assert traffic.writes == []  # no claim: the accept wrote it
        run_ids = [outcome.run_id for outcome in outcomes if isinstance(outcome, Trigger)]
        assert len(run_ids) == 5
        assert_completed_once(engine, run_ids)


def test_run_until_idle_with_nothing_due_writes_nothing(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.create_start(**KEY, source_id="done")
        engine.run_until_idle()
        before = trigger_rows(engine)
        with watched(engine) as traffic:
            assert engine.run_until_idle() == 0
            assert engine.run_until_idle(max_triggers=5) == 0
        assert traffic.writes == []  # no claim: a read-only question, answered "no"
        assert traffic.write_transactions == 0
        assert traffic.commits == 2  # the two questions' read transactions
        assert trigger_rows(engine) == before


def test_a_start_accepted_by_a_thread_that_never_processes_is_left_new(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.run_until_idle()  # on this thread only
        accepted: list[int] = []
        other = threading.Thread(
            target=lambda: accepted.append(engine.create_start(**KEY, source_id="A").id)
        )
        other.start()
        other.join()
        assert [(row[0], row[1], row[2], row[3]) for row in trigger_rows(engine)] == [
            (accepted[0], "New", 0, None)
        ]
        assert engine.run_until_idle() == 1  # claimed from the queue as before


def test_a_start_claimed_by_its_accept_is_taken_up_by_another_engine_once_its_lease_ends(
    database_url: str,
) -> None:
    clock_now = [1_900_000_000.0]
    with (
        Engine(database_url, lease_seconds=30, clock=lambda: clock_now[0]) as dying,
        Engine(database_url, clock=lambda: clock_now[0]) as other,
    ):
        dying.load_tree(TWO_STEPS)
        other.load_tree(TWO_STEPS)
        dying.run_until_idle()
        trigger = dying.create_start(**KEY, source_id="orphan")
        assert trigger.status is TriggerStatus.WORK_IN_PROGRESS  # claimed for dying's thread
        assert other.run_until_idle() == 0  # leased: nobody else takes it meanwhile
        clock_now[0] += LATER  # dying never processes it: its lease runs out
        assert other.run_until_idle() == 1
        row = trigger_rows(other)[0]
        assert (row[1], row[2], row[4]) == ("Closed", 2, other.name)  # the second attempt
        # The engine that accepted it finds its lease gone and hands back nothing it lost.
        assert dying.run_until_idle() == 0
        assert other.get_run(trigger.run_id).task("Two").results == {"output": "orphan-1-2"}


def test_closing_an_engine_hands_back_the_start_its_accept_claimed(database_url: str) -> None:
    with Engine(database_url) as other:
        other.load_tree(TWO_STEPS)
        with Engine(database_url) as accepting:
            accepting.run_until_idle()
            trigger = accepting.create_start(**KEY, source_id="handed back")
        assert trigger_rows(other)[0][1:4] == ("New", 1, None)  # at once, not after the lease
        assert other.run_until_idle() == 1
        assert other.get_run(trigger.run_id).status is RunStatus.COMPLETED


def test_workers_started_later_take_the_start_claimed_for_a_thread(database_url: str) -> None:
    with Engine(database_url, poll_interval=30) as engine:  # no poll: only the hand-off
        engine.load_tree(TWO_STEPS)
        engine.run_until_idle()
        trigger = engine.create_start(**KEY, source_id="before the workers")
        assert trigger.status is TriggerStatus.WORK_IN_PROGRESS
        engine.start(workers=1, schedules=False)  # this thread will not process it
        wait_for(lambda: engine.count_open_triggers() == 0)
        engine.stop()
        assert engine.run_until_idle() == 0  # its thread finds it taken
        assert_completed_once(engine, [trigger.run_id])


def test_a_start_of_a_tree_outside_the_engines_selection_is_not_claimed(
    database_url: str,
) -> None:
    with Engine(database_url, selection=["reports"]) as engine:
        engine.load_tree(TWO_STEPS)  # no label: not this engine's
        engine.run_until_idle()
        trigger = engine.create_start(**KEY, source_id="not mine")
        assert trigger.status is TriggerStatus.NEW
        assert engine.run_until_idle() == 0
        assert trigger_rows(engine)[0][1:4] == ("New", 0, None)


def test_idle_workers_are_handed_the_starts_of_several_threads(database_url: str) -> None:
    with Engine(database_url, poll_interval=30) as engine:  # no poll: hand-offs and wake-ups
        engine.load_tree(TWO_STEPS)
        engine.start(workers=2, schedules=False)
        run_ids: list[int] = []
        lock = threading.Lock()

        def submit(prefix: str) -> None:
            for number in range(20):
                run_id = engine.create_start(**KEY, source_id=f"{prefix}{number}").run_id
                with lock:
                    run_ids.append(run_id)

        threads = [threading.Thread(target=submit, args=(p,)) for p in "abc"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: engine.count_open_triggers() == 0)
        engine.stop()
        assert_completed_once(engine, run_ids)
        assert {row[4] for row in trigger_rows(engine)} == {engine.name}


def busy_engine(url: str, gate: Gate, **options: Any) -> Engine:
    """An engine whose one worker is held in the gate by a run of Gated, so it is busy."""
    engine = Engine(url, plugins=[gate], poll_interval=30, **options)  # no poll: hand-offs only
    engine.load_tree(TWO_STEPS)
    engine.load_tree(GATED)
    engine.start(workers=1, schedules=False)
    engine.create_start(**GATED_KEY, source_id="held")
    assert gate.entered.wait(60)
    return engine


def test_starts_accepted_while_every_worker_is_busy_are_gathered_into_one_claim(
    database_url: str,
) -> None:
    gate = Gate()
    engine = busy_engine(database_url, gate, batch_size=4)
    try:
        run_ids = [engine.create_start(**KEY, source_id=f"G{n}").run_id for n in range(6)]
        rows = trigger_rows(engine)[1:]  # after the held run's
        # A claim's size of them claimed together for the next worker, under one claim id;
        # the rest accepted New, to be claimed from the queue.
        owners = {row[3] for row in rows[:4]}
        assert len(owners) == 1 and None not in owners
        assert [row[1:3] for row in rows[:4]] == [("Work In Progress", 1)] * 4
        assert [row[1:4] for row in rows[4:]] == [("New", 0, None)] * 2
        gate.opened.set()
        wait_for(lambda: engine.count_open_triggers() == 0)
        with engine.database.read() as connection:
            closes = connection.execute(
                sa.text("SELECT closed_at, attempts FROM triggers WHERE id > 1 ORDER BY id")
            ).all()
        # The gathering is one step (its closes committed together, at one time) on its first
        # attempt; the two New ones were claimed (their first attempt) and processed after it.
        assert len({row[0] for row in closes[:4]}) == 1
        assert closes[4][0] > closes[0][0] and closes[5][0] > closes[0][0]
        assert [row[1] for row in closes] == [1] * 6
        assert {engine.get_run(r).status for r in run_ids} == {RunStatus.COMPLETED}
        assert engine.get_run(run_ids[3]).task("Two").results == {"output": "G3-1-2"}
    finally:
        gate.opened.set()
        engine.close()


def test_a_gathering_no_worker_takes_in_time_is_handed_back_to_the_queue(
    database_url: str,
) -> None:
    gate = Gate()
    clock = FixedClock()
    # A lease of 3 s: the heartbeat looks every second, and hands back a gathering whose first
    # start is more than a second old by the engine's clock, long before its lease runs out.
    engine = busy_engine(database_url, gate, lease_seconds=3, clock=clock)
    try:
        run_ids = [engine.create_start(**KEY, source_id=f"S{n}").run_id for n in range(2)]
        assert [row[1] for row in trigger_rows(engine)[1:]] == ["Work In Progress"] * 2
        clock.now += 1.5  # the worker is still in the gate; the leases hold for 1.5 s more
        wait_for(lambda: [row[1:4] for row in trigger_rows(engine)[1:]] == [("New", 1, None)] * 2)
        with Engine(database_url, clock=clock) as other:
            other.load_tree(TWO_STEPS)
            assert other.run_until_idle() == 2
            assert {other.get_run(r).status for r in run_ids} == {RunStatus.COMPLETED}
            # Claimed by the other engine: the second attempt, as for any claim handed back.
            assert [(row[1], row[2], row[4]) for row in trigger_rows(other)[1:]] == [
                ("Closed", 2, other.name)
            ] * 2
    finally:
        gate.opened.set()
        engine.close()


def claim_of(claim_id: str, run_id: int, until: float) -> Claim:
    trigger = ClaimedTrigger(run_id, "Root", run_id, None, None, None, None, 1)
    return Claim(claim_id, [trigger], runs={run_id: {"id": run_id}}, until=until)


def test_a_worker_taking_a_gathering_waits_for_the_accepts_still_writing_under_it() -> None:
    hand_off = HandOff(limit=8)
    hand_off.workers_started()  # no worker idle: every accept joins the gathering
    first, second = hand_off.reserve(), hand_off.reserve()
    assert first is not None and second is not None
    assert first.claim_id == second.claim_id and first.for_workers
    hand_off.deliver(first, claim_of(first.claim_id, 1, until=20.0))
    taken: list[Claim | None] = []
    worker = threading.Thread(target=lambda: taken.append(hand_off.for_worker()))
    worker.start()
    worker.join(0.2)  # a moment for it to reach the wait; a worker still waiting is the point
    assert taken == []  # the second accept has not delivered
    later = hand_off.reserve()  # the gathering is sealed: a new one begins
    assert later is not None and later.claim_id != first.claim_id
    hand_off.deliver(second, claim_of(second.claim_id, 2, until=10.0))
    worker.join(60)
    claim = taken[0]
    assert claim is not None and claim.id == first.claim_id
    assert [t.run_id for t in claim.triggers] == [1, 2] and set(claim.runs or {}) == {1, 2}
    assert claim.until == 10.0  # the earliest lease of its starts
    hand_off.deliver(later, None)  # refused: nothing to take
    assert hand_off.for_worker() is None


def test_a_gathering_holds_at_most_a_claims_size_of_starts() -> None:
    hand_off = HandOff(limit=5)
    hand_off.workers_started()
    batch = hand_off.reserve(4)
    single = hand_off.reserve()
    assert batch is not None and single is not None
    assert (batch.room, single.room) == (4, 1)
    assert hand_off.reserve() is None  # full: accepted New
    hand_off.deliver(batch, claim_of(batch.claim_id, 1, until=20.0))  # one of its four claimed
    again = hand_off.reserve(10)
    assert again is not None and again.room == 3  # 5 less the one delivered and one promised


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.postgres
def test_hand_offs_and_another_worker_process_share_one_postgresql_queue(
    postgres_url: str, tmp_path: Path
) -> None:
    url = postgres_url
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "two_steps.yaml").write_text(TWO_STEPS_YAML, encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    with Engine(url, trees=trees, poll_interval=0.05) as engine:
        workers = Workers(url, trees, logs, 1)  # its own process group, killed whatever happens
        try:
            engine.start(workers=1, schedules=False)
            run_ids = [engine.create_start(**KEY, source_id=f"S{n}").run_id for n in range(150)]
            wait_for(lambda: engine.count_open_triggers() == 0)
            engine.stop()
            assert workers.stop() == [0]
        finally:
            workers.kill_all()
        assert_completed_once(engine, run_ids)
