"""Concurrency claims, tested with real threads on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import sqlalchemy as sa

from engine import (
    Engine,
    Handler,
    HandlerContext,
    Parameter,
    RunStatus,
    TaskStatus,
    TokenNotFound,
    hookimpl,
)

from .support import REGISTRATION, race, small_tree, wait_for


def test_eight_threads_racing_to_complete_one_token_exactly_one_wins(engine: Engine) -> None:
    trigger = engine.create_start(**REGISTRATION, source_id="RACE")
    engine.run_until_idle()
    token = engine.get_run(trigger.run_id).task("Review").token
    denied = '<results><result name="Status">Denied</result></results>'
    outcomes = race(
        8, lambda: engine.create_deferred(token=token, action="Complete", results=denied)
    )
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1
    assert len(losers) == 7
    assert all(isinstance(o, TokenNotFound) for o in losers)
    with engine.database.read() as connection:
        completes = connection.execute(
            sa.text("SELECT count(*) FROM triggers WHERE action = 'Complete'")
        ).scalar_one()
    assert completes == 1
    engine.run_until_idle()
    run = engine.get_run(trigger.run_id)
    assert [t.name for t in run.tasks].count("Denied") == 1
    assert run.status is RunStatus.COMPLETED


def test_eight_threads_starting_with_one_idempotency_key_start_one_run(engine: Engine) -> None:
    outcomes = race(
        8, lambda: engine.create_start(**REGISTRATION, source_id="K", idempotency_key="order-9")
    )
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert len({o.id for o in outcomes}) == 1  # type: ignore[attr-defined]
    with engine.database.read() as connection:
        runs = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    assert runs == 1


def test_background_workers_process_starts_from_many_threads(engine: Engine) -> None:
    engine.start(workers=4)
    try:
        outcomes = race(
            8,
            lambda: [
                engine.create_start(
                    **{**REGISTRATION, "tree_name": "Parallel Checks"},
                    results='<results><result name="Attendee">Zed</result></results>',
                ).run_id
                for _ in range(10)
            ],
        )
        run_ids = [run_id for batch in outcomes for run_id in batch]  # type: ignore[union-attr]
        assert len(set(run_ids)) == 80

        def all_completed() -> bool:
            return len(engine.list_runs(status="Completed", limit=1000)) == 80

        wait_for(all_completed)
    finally:
        engine.stop()
    for run_id in run_ids[:5]:
        run = engine.get_run(run_id)
        assert [t.name for t in run.tasks].count("Report") == 1


class OverlapProbe:
    """A handler that notices if two steps of the same run ever execute at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside: dict[int, int] = {}
        self.overlaps = 0
        self.seen: list[str] = []

    def execute(self, context: HandlerContext) -> Mapping[str, str]:
        with self.lock:
            self.inside[context.run_id] = self.inside.get(context.run_id, 0) + 1
            if self.inside[context.run_id] > 1:
                self.overlaps += 1
        time.sleep(0.005)  # widen the window an overlap would need
        with self.lock:
            self.inside[context.run_id] -= 1
            self.seen.append(context.parameters["note"])
        return {"note": context.parameters["note"]}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [
            Handler("tests_probe_v1", self.execute, parameters=(Parameter("note", required=True),))
        ]


def test_triggers_of_one_run_are_never_processed_concurrently(database_url: str) -> None:
    probe = OverlapProbe()
    with Engine(database_url, plugins=[probe], poll_interval=0.05, batch_size=2) as engine:
        engine.load_tree(
            small_tree(
                "Serial",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Hold"}]},
                    "Hold": {
                        "handler": "utilities_defer_v1",
                        "defers": True,
                        "connectors": [{"to": "Probe", "type": "Update"}],
                    },
                    "Probe": {
                        "handler": "tests_probe_v1",
                        "parameters": {"note": "{{ trigger.message }}"},
                    },
                },
            )
        )
        trigger = engine.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Serial"
        )
        engine.run_until_idle()
        token = engine.get_run(trigger.run_id).task("Hold").token
        for number in range(24):
            engine.create_deferred(token=token, action="Update", message=f"update {number}")
        engine.start(workers=4)
        try:
            wait_for(lambda: len(probe.seen) == 24)
        finally:
            engine.stop()
        run = engine.get_run(trigger.run_id)
    assert probe.overlaps == 0
    assert probe.seen == [f"update {n}" for n in range(24)]  # applied in acceptance order
    assert run.task("Hold").status is TaskStatus.DEFERRED


def test_stop_returns_unprocessed_triggers_to_the_queue(database_url: str) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(context: HandlerContext) -> Mapping[str, str]:
        started.set()
        release.wait(30)
        return {}

    class Slow:
        @hookimpl
        def treeflow_node_handlers(self) -> list[Handler]:
            return [Handler("tests_slow_v1", slow)]

    with Engine(database_url, plugins=[Slow()], batch_size=8) as engine:
        engine.load_tree(
            small_tree(
                "Slow",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Slow"}]},
                    "Slow": {"handler": "tests_slow_v1"},
                },
            )
        )
        for number in range(5):
            engine.create_start(
                source_name="Tests",
                source_group="Semantics",
                tree_name="Slow",
                source_id=str(number),
            )
        engine.start(workers=1)
        assert started.wait(30)
        stopper = threading.Thread(target=engine.stop)
        stopper.start()
        release.set()
        stopper.join()
        with engine.database.read() as connection:
            statuses = dict(
                connection.execute(
                    sa.text("SELECT status, count(*) FROM triggers GROUP BY status")
                ).all()
            )
        assert statuses == {"Closed": 1, "New": 4}
        assert engine.run_until_idle() == 4
