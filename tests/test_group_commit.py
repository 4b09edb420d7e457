"""Group commit: a claim's triggers commit together, and a lost lease costs only its own run."""

from __future__ import annotations

import sqlalchemy as sa

from engine import Engine, RunStatus, TriggerStatus

from .conftest import TREES
from .support import APPROVED, TWO_STEPS, TWO_STEPS_KEY, small_tree, start

KEY = TWO_STEPS_KEY


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def task_counts(engine: Engine) -> dict[int, int]:
    with engine.database.read() as connection:
        rows = connection.execute(sa.text("SELECT run_id, count(*) FROM tasks GROUP BY run_id"))
        return {run_id: count for run_id, count in rows}


def test_one_claim_commits_every_run_of_the_batch(database_url: str) -> None:
    with Engine(database_url, batch_size=64) as engine:
        engine.load_tree(TWO_STEPS)
        triggers = [engine.create_start(**KEY, source_id=f"R{n}") for n in range(5)]
        claim = engine.runner.claim(64)
        assert sorted(t.id for t in claim.triggers) == [t.id for t in triggers]
        assert engine.runner.process(claim) == 5
        for trigger in triggers:
            run = engine.get_run(trigger.run_id)
            assert run.status is RunStatus.COMPLETED
            assert run.task("Two").results == {"output": f"{run.source_id}-1-2"}
            closed = engine.get_trigger(trigger.id)
            assert (closed.status, closed.engine) == (TriggerStatus.CLOSED, engine.name)
        assert set(task_counts(engine).values()) == {3}


def test_a_run_taken_over_after_its_lease_ran_out_is_not_committed_twice(
    database_url: str,
) -> None:
    clock = Clock()
    with Engine(database_url, clock=clock, lease_seconds=10) as engine:
        engine.load_tree(TWO_STEPS)
        first, second, third = (engine.create_start(**KEY, source_id=f"R{n}") for n in range(3))
        slow = engine.runner.claim(10)
        clock.now += 20  # the slow claim's leases run out; another worker takes the oldest
        taker = engine.runner.claim(1)
        assert [t.id for t in taker.triggers] == [first.id]

        assert engine.runner.process(slow) == 2  # the batch falls back to run by run
        assert engine.get_run(first.run_id).status is RunStatus.STAGED
        assert engine.get_run(second.run_id).status is RunStatus.COMPLETED
        assert engine.get_run(third.run_id).status is RunStatus.COMPLETED

        assert engine.runner.process(taker) == 1
        assert engine.get_run(first.run_id).status is RunStatus.COMPLETED
        assert task_counts(engine) == {first.run_id: 3, second.run_id: 3, third.run_id: 3}
        with engine.database.read() as connection:
            attempts = connection.execute(
                sa.text("SELECT id, attempts FROM triggers ORDER BY id")
            ).all()
        assert [tuple(row) for row in attempts] == [(first.id, 2), (second.id, 1), (third.id, 1)]


def test_update_and_complete_of_one_token_in_one_batch_apply_in_order(database_url: str) -> None:
    with Engine(database_url, batch_size=64) as engine:
        engine.load_tree(
            small_tree(
                "Waits",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Wait"}]},
                    "Wait": {
                        "handler": "utilities_defer_v1",
                        "defers": True,
                        "connectors": [
                            {"to": "Noted", "type": "Update"},
                            {"to": "Done"},
                        ],
                    },
                    "Noted": {"handler": "utilities_echo_v1", "parameters": {"input": "noted"}},
                    "Done": {
                        "handler": "utilities_echo_v1",
                        "parameters": {"input": "{{ results['Wait']['Status'] }}"},
                    },
                },
            )
        )
        trigger = engine.create_start(**{**KEY, "tree_name": "Waits"})
        engine.run_until_idle()
        token = engine.get_run(trigger.run_id).task("Wait").token
        assert token is not None
        engine.create_deferred(token=token, action="Update")
        engine.create_deferred(token=token, action="Complete", results=APPROVED)
        assert engine.run_until_idle() == 2
        run = engine.get_run(trigger.run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Noted").results == {"output": "noted"}
        assert run.task("Done").results == {"output": "Approved"}


def test_a_settled_run_with_a_trigger_accepted_meanwhile_stays_started_in_a_batch(
    database_url: str,
) -> None:
    """A run whose step ends it, but which was sent another trigger while the batch ran, stays
    Started until that trigger is processed; the batch's other runs settle as they end."""
    with Engine(database_url, trees=TREES, batch_size=64) as engine:
        first, second = (start(engine, source_id=f"REG-{n}") for n in (1, 2))
        tokens = [engine.get_run(run_id).task("Review").token for run_id in (first, second)]
        for token in tokens:
            engine.create_deferred(token=token, action="Complete", results=APPROVED)
        claim = engine.runner.claim(64)
        assert len(claim.triggers) == 2
        late = engine.manual_trigger(
            first, "Notify Reviewer", results=APPROVED, reason="late", by="admin"
        )

        assert engine.runner.process(claim) == 2
        assert engine.get_run(first).status is RunStatus.STARTED  # its Update is still open
        assert engine.get_run(second).status is RunStatus.COMPLETED
        assert engine.get_trigger(late.id).status is TriggerStatus.NEW

        engine.run_until_idle()
        assert engine.get_trigger(late.id).status is not TriggerStatus.NEW
        assert engine.get_run(first).status is RunStatus.COMPLETED
