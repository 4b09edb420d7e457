"""``Engine.create_starts``: many starts in one transaction (group commit), on SQLite and
PostgreSQL. Each call gets its own outcome; a refused call writes nothing and costs the others
nothing; a database refusal rolls the batch back and the calls are written one by one; racing
batches with shared keys start each run once; a batch's runs are processed like any."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from engine import (
    BadRequest,
    BadResults,
    Engine,
    IdempotencyKeyReused,
    RunStatus,
    StartCall,
    TreeNotFound,
    Trigger,
)
from engine.statuses import TriggerAction, TriggerStatus
from engine.store.request_keys import request_keys

from .support import (
    REGISTRATION,
    TWO_STEPS,
    TWO_STEPS_KEY,
    race,
    refused_creator,
    registration_call,
    runs_stored,
)

UNKNOWN = {**REGISTRATION, "tree_name": "No Such Tree"}


def test_each_call_gets_its_own_outcome_and_a_refused_one_writes_nothing(engine: Engine) -> None:
    before = runs_stored(engine)
    outcomes = engine.create_starts(
        [
            registration_call("first"),
            StartCall(**UNKNOWN, source_id="unknown"),  # type: ignore[arg-type]
            StartCall(source_name="", source_group="G", tree_name="T"),
            registration_call("keyed", idempotency_key="batch-key"),
            registration_call("keyed again", idempotency_key="batch-key"),
            registration_call("bad results", results="<results><result name="),
            registration_call("last", message="the last one"),
        ]
    )

    first, unknown, empty, keyed, keyed_again, bad_results, last = outcomes
    assert isinstance(first, Trigger) and isinstance(keyed, Trigger) and isinstance(last, Trigger)
    assert isinstance(unknown, TreeNotFound) and "No Such Tree" in str(unknown)
    assert isinstance(empty, BadRequest) and "source_name" in str(empty)
    assert isinstance(bad_results, BadResults)
    assert keyed_again == keyed  # one key in one batch is one start, as two calls would be
    assert len({first.id, keyed.id, last.id}) == 3
    assert runs_stored(engine) == before + 3
    for trigger, source_id in ((first, "first"), (keyed, "keyed"), (last, "last")):
        assert (trigger.action, trigger.status) == (TriggerAction.ROOT, TriggerStatus.NEW)
        assert engine.get_run(trigger.run_id).source_id == source_id
    assert engine.get_trigger(last.id).message == "the last one"


def test_a_key_reused_for_another_request_refuses_that_call_alone(engine: Engine) -> None:
    earlier = engine.create_start(
        **REGISTRATION, source_id="earlier", idempotency_key="used", fingerprint="request-1"
    )
    before = runs_stored(engine)

    reused, repeat, other = engine.create_starts(
        [
            registration_call("changed", idempotency_key="used", fingerprint="request-2"),
            registration_call("earlier", idempotency_key="used", fingerprint="request-1"),
            registration_call("other"),
        ]
    )

    assert isinstance(reused, IdempotencyKeyReused)
    assert repeat == earlier
    assert isinstance(other, Trigger)
    assert runs_stored(engine) == before + 1


def test_a_database_refusal_rolls_the_batch_back_and_writes_the_calls_one_by_one(
    engine: Engine,
) -> None:
    # A key whose request record exists without its trigger: the key's insert is refused by
    # the database's unique index, the way a start racing another process's with it is.
    planted = engine.create_start(**REGISTRATION, source_id="planted")
    with engine.database.write() as connection:
        connection.execute(
            request_keys.insert().values(
                idempotency_key="orphan", fingerprint="f", trigger_id=planted.id, created_at=0.0
            )
        )
    before = runs_stored(engine)

    written, refused, also_written = engine.create_starts(
        [
            registration_call("before it"),
            registration_call("refused", idempotency_key="orphan", fingerprint="f"),
            registration_call("after it", idempotency_key="fine", fingerprint="g"),
        ]
    )

    assert isinstance(refused, sa.exc.IntegrityError)
    assert isinstance(written, Trigger) and isinstance(also_written, Trigger)
    assert runs_stored(engine) == before + 2  # each once: the rolled-back batch kept nothing
    assert {engine.get_run(t.run_id).source_id for t in (written, also_written)} == {
        "before it",
        "after it",
    }


def test_a_database_refusal_in_a_batch_without_keys_raises_and_keeps_nothing(
    engine: Engine,
) -> None:
    creator = refused_creator(engine)
    before = runs_stored(engine)

    with pytest.raises(sa.exc.DBAPIError):
        engine.create_starts(
            [
                registration_call("kept?", created_by="fine"),
                registration_call("no", created_by=creator),
            ]
        )

    assert runs_stored(engine) == before


def test_racing_batches_with_shared_keys_start_each_run_once(engine: Engine) -> None:
    before = runs_stored(engine)
    keys = [f"shared-{number}" for number in range(10)]

    def batch() -> list[int]:
        outcomes = engine.create_starts(
            [registration_call(key, idempotency_key=key, fingerprint=key) for key in keys]
        )
        assert all(isinstance(outcome, Trigger) for outcome in outcomes), outcomes
        return [outcome.id for outcome in outcomes if isinstance(outcome, Trigger)]

    answers = race(4, batch)

    assert all(isinstance(answer, list) for answer in answers), answers
    assert len({tuple(answer) for answer in answers}) == 1  # type: ignore[arg-type]
    assert runs_stored(engine) == before + 10


def test_starts_accepted_together_are_processed_by_the_workers(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(TWO_STEPS)
        engine.start(workers=1)
        try:
            outcomes = engine.create_starts(
                [StartCall(**TWO_STEPS_KEY, source_id=f"s{n}") for n in range(20)]  # type: ignore[arg-type]
            )
            run_ids = [outcome.run_id for outcome in outcomes if isinstance(outcome, Trigger)]
            assert len(run_ids) == 20
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all(engine.get_run(i).status == RunStatus.COMPLETED for i in run_ids):
                    break
                time.sleep(0.05)
        finally:
            engine.stop()
        assert {engine.get_run(i).status for i in run_ids} == {RunStatus.COMPLETED}
        assert [engine.get_run(i).source_id for i in run_ids] == [f"s{n}" for n in range(20)]


def test_no_calls_is_no_outcomes(engine: Engine) -> None:
    assert engine.create_starts([]) == []
