"""Scheduled tasks in an engine, on SQLite and PostgreSQL, in real time (second-long slots).

Each test waits for firings recorded in the schedule's history (polling, with generous
deadlines), never for a fixed time, except where the point is to let slots pass while no
scheduler runs. Slots are whole seconds, so the tests assert on slot times, not on when the
firings happened.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine import BadRequest, Engine, RunStatus, TreeNotFound
from engine.errors import ScheduleNotFound
from engine.records import Firing, Schedule
from engine.schedule.scheduler import JOB_TABLE, LOOKUP_RETRY_SECONDS, JobStore

from .support import race, small_tree, wait_for

TICK = small_tree(
    "Tick",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
        "Echo": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ source.id }}: {{ inputs['Colour'] }}"},
        },
    },
)
TREE = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Tick"}
EVERY_SECOND = {"kind": "interval", "every": 1, "unit": "seconds"}
POLL = 0.2


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    with Engine(url, schedule_poll_seconds=POLL, poll_interval=0.05) as engine:
        engine.load_tree(TICK)
        yield engine


@pytest.fixture
def eng(database_url: str) -> Iterator[Engine]:
    with engine_on(database_url) as engine:
        yield engine


def create(engine: Engine, **fields: Any) -> Schedule:
    values: dict[str, Any] = {"name": "tick", **TREE, "when": EVERY_SECOND}
    if "results" not in fields:
        values["values"] = {"Colour": "none"}
    values |= fields
    return engine.schedules.create(**values)


def history(engine: Engine, schedule: Schedule, outcome: str | None = None) -> list[Firing]:
    found = engine.schedules.history(schedule.id, limit=1000)
    return [f for f in reversed(found) if outcome is None or f.outcome == outcome]


def started(engine: Engine, schedule: Schedule) -> list[Firing]:
    return history(engine, schedule, "Started")


def table_count(engine: Engine, table: str) -> int:
    with engine.database.read() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_interval_firings_start_runs_with_the_source_id_and_inputs(eng: Engine) -> None:
    schedule = create(eng, source_id="order-7", values={"Colour": "blue"})
    eng.start(workers=1)
    wait_for(lambda: len(started(eng, schedule)) >= 3)
    eng.stop()
    firings = started(eng, schedule)
    slots = [f.fire_time for f in firings]
    assert slots == sorted(set(slots)), "each slot fires once, in order"
    assert all(slot == int(slot) for slot in slots), "slots are the interval's, not wall time"
    assert all(b - a == 1 for a, b in itertools.pairwise(slots))
    for firing in firings:
        run = eng.get_run(firing.run_id)
        assert run.source_id == "order-7"
        assert run.inputs == {"Colour": "blue"}
        with eng.database.read() as connection:
            source_data, key = connection.execute(
                sa.text(
                    "SELECT r.source_data, t.idempotency_key FROM runs r"
                    " JOIN triggers t ON t.run_id = r.id WHERE t.id = :id"
                ),
                {"id": firing.trigger_id},
            ).one()
        stamp = datetime.fromtimestamp(firing.fire_time, UTC).isoformat()
        assert key == f"schedule:{schedule.id}:{stamp}"
        data = source_data if isinstance(source_data, dict) else json.loads(source_data)
        assert (data["schedule_id"], data["fire_time"]) == (schedule.id, stamp)
    eng.run_until_idle()
    run = eng.get_run(firings[0].run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.tasks[-1].results == {"output": "order-7: blue"}


def test_a_one_off_fires_once_and_is_then_done(eng: Engine) -> None:
    # Far enough ahead that a slow creation on a loaded machine cannot find it in the past.
    schedule = create(eng, when={"kind": "once", "at": in_seconds(3)})
    assert schedule.next_fire_time is not None
    eng.start(workers=1)
    wait_for(lambda: eng.schedules.get(schedule.id).done)
    eng.stop()
    firings = history(eng, schedule)
    assert [f.outcome for f in firings] == ["Started"]
    assert firings[0].fire_time == datetime.fromisoformat(schedule.when["at"]).timestamp()
    shown = eng.schedules.get(schedule.id)
    assert shown.next_fire_time is None
    assert table_count(eng, "runs") == 1


def test_run_now_starts_a_run_even_when_the_schedule_is_disabled(eng: Engine) -> None:
    schedule = create(eng, enabled=False, source_id="manual", values={"Colour": "red"})
    firing = eng.schedules.run_now(schedule.id)
    assert firing.manual and firing.outcome == "Started"
    eng.run_until_idle()
    run = eng.get_run(firing.run_id)
    assert (run.status, run.source_id, run.inputs) == (
        RunStatus.COMPLETED,
        "manual",
        {"Colour": "red"},
    )
    assert [f.id for f in history(eng, schedule)] == [firing.id]
    with pytest.raises(ScheduleNotFound, match="99"):
        eng.schedules.run_now(99)


def test_a_disabled_schedule_does_not_fire(eng: Engine) -> None:
    witness = create(eng, name="witness")
    quiet = create(eng, name="quiet", enabled=False)
    eng.start(workers=1)
    wait_for(lambda: len(started(eng, witness)) >= 3)
    eng.stop()
    assert history(eng, quiet) == []
    assert quiet.next_fire_time is None


def test_disabling_stops_firing_and_delete_removes_the_history(eng: Engine) -> None:
    schedule = create(eng)
    eng.start(workers=1)
    wait_for(lambda: len(started(eng, schedule)) >= 2)
    changed = eng.schedules.update(schedule.id, enabled=False)
    assert changed.revision == schedule.revision + 1
    fired = len(started(eng, schedule))
    witness = create(eng, name="witness")
    wait_for(lambda: len(started(eng, witness)) >= 3)
    assert len(started(eng, schedule)) <= fired + 1  # at most a slot already in hand
    eng.stop()
    eng.schedules.delete(schedule.id)
    assert history(eng, witness)
    with pytest.raises(ScheduleNotFound):
        eng.schedules.history(schedule.id)
    with eng.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT count(*) FROM schedule_firings WHERE schedule_id = :id"),
            {"id": schedule.id},
        ).scalar_one()
    assert rows == 0


BAD = [
    ({"when": {"kind": "cron", "cron": "61 * * * *"}}, BadRequest, "when.cron"),
    ({"when": {"kind": "cron", "cron": "* * *"}}, BadRequest, "when.cron"),
    ({"when": {"kind": "once", "at": "2001-01-01T00:00:00Z"}}, BadRequest, "when.at"),
    ({"when": {"kind": "interval", "every": 0, "unit": "minutes"}}, BadRequest, "when.every"),
    ({"when": {"kind": "interval", "every": 5, "unit": "fortnights"}}, BadRequest, "when.unit"),
    ({"when": {"kind": "weekly", "days": ["funday"]}}, BadRequest, "when.days"),
    ({"when": {"kind": "monthly", "day": 32}}, BadRequest, "when.day"),
    ({"when": {"kind": "weekdays", "time": "25:00"}}, BadRequest, "when.time"),
    ({"when": {"kind": "once", "at": in_seconds(60), "every": 3}}, BadRequest, "when.every"),
    ({"when": {"kind": "hourly"}}, BadRequest, "when.kind"),
    ({"timezone": "Mars/Olympus_Mons"}, BadRequest, "timezone"),
    ({"tree_name": "No Such Tree"}, TreeNotFound, "No Such Tree"),
    ({"grace_seconds": 0}, BadRequest, "grace_seconds"),
    ({"results": "<results><result"}, Exception, "results XML"),
    ({"values": {"a": "1"}, "results": "<results/>"}, BadRequest, "values"),
    ({"name": ""}, BadRequest, "name"),
]


@pytest.mark.parametrize(("fields", "error", "named"), BAD)
def test_bad_input_is_refused_by_name_and_nothing_is_stored(
    eng: Engine, fields: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named.replace(".", r"\.")):
        create(eng, **fields)
    assert table_count(eng, "schedules") == 0


def test_a_bad_update_changes_nothing(eng: Engine) -> None:
    schedule = create(eng)
    with pytest.raises(BadRequest, match=r"when\.cron"):
        eng.schedules.update(schedule.id, when={"kind": "cron", "cron": "not cron"})
    with pytest.raises(BadRequest, match="colour"):
        eng.schedules.update(schedule.id, colour="blue")
    with pytest.raises(ScheduleNotFound):
        eng.schedules.update(12345, enabled=False)
    assert eng.schedules.get(schedule.id).revision == schedule.revision


def _restart_after(url: str, schedule: Schedule, *, down: float) -> Engine:
    """Fire a few slots, stop for ``down`` seconds, start a new engine process's worth again."""
    with engine_on(url) as first:
        first.start(workers=1)
        wait_for(lambda: len(started(first, schedule)) >= 2)
    time.sleep(down)  # slots pass while no scheduler runs: the point of the test
    return engine_on(url).__enter__()


def test_missed_slots_within_the_grace_time_are_coalesced_into_one_run(
    database_url: str,
) -> None:
    with engine_on(database_url) as engine:
        schedule = create(engine, grace_seconds=60)
    second = _restart_after(database_url, schedule, down=3.5)
    try:
        before = started(second, schedule)
        second.start(workers=1)
        wait_for(lambda: history(second, schedule, "Coalesced"))
        wait_for(lambda: len(started(second, schedule)) > len(before))
        second.stop()
        # The backlog is the first Coalesced row; a scheduler thread stalled for over a second
        # (a loaded machine) may coalesce a later pair of slots too, which is also correct.
        coalesced = history(second, schedule, "Coalesced")[0]
        assert coalesced.slots >= 2
        assert coalesced.first_fire_time == before[-1].fire_time + 1, "no slot left unrecorded"
        assert coalesced.fire_time == coalesced.first_fire_time + coalesced.slots - 1
        after = [f for f in started(second, schedule) if f.fire_time > before[-1].fire_time]
        assert after[0].fire_time == coalesced.fire_time + 1
        assert "coalesced into the firing at" in coalesced.reason
        assert coalesced.run_id is None
    finally:
        second.close()


def test_missed_slots_beyond_the_grace_time_are_skipped_with_the_reason(
    database_url: str,
) -> None:
    with engine_on(database_url) as engine:
        schedule = create(engine, grace_seconds=1)
    second = _restart_after(database_url, schedule, down=4)
    try:
        before = started(second, schedule)
        second.start(workers=1)
        wait_for(lambda: history(second, schedule, "Missed"))
        second.stop()
        # The backlog is the first Missed row; a scheduler thread stalled for over the grace
        # time (a loaded machine) may miss later slots too, which is also correct.
        missed_rows = history(second, schedule, "Missed")
        missed = missed_rows[0]
        assert missed.slots >= 2
        assert missed.first_fire_time == before[-1].fire_time + 1
        assert all("over the grace time of 1s" in row.reason for row in missed_rows)
        runs = {f.run_id for f in started(second, schedule)}
        assert table_count(second, "runs") == len(runs)
        assert all(
            not row.first_fire_time <= f.fire_time <= row.fire_time
            for row in missed_rows
            for f in started(second, schedule)
        )
    finally:
        second.close()


def test_without_coalescing_every_missed_slot_within_grace_starts_its_run(
    database_url: str,
) -> None:
    with engine_on(database_url) as engine:
        schedule = create(engine, grace_seconds=60, coalesce=False)
    second = _restart_after(database_url, schedule, down=3)
    try:
        last = started(second, schedule)[-1].fire_time
        second.start(workers=1)
        wait_for(lambda: started(second, schedule)[-1].fire_time >= last + 4)
        second.stop()
        slots = [f.fire_time for f in started(second, schedule)]
        assert slots == [slots[0] + n for n in range(len(slots))], "no slot skipped"
        assert history(second, schedule, "Coalesced") == []
    finally:
        second.close()


def test_one_slot_fired_by_two_engines_starts_one_run(database_url: str) -> None:
    with engine_on(database_url) as one, engine_on(database_url) as other:
        schedule = create(one)
        slot = float(int(time.time()))
        first = one.schedules.firer.fire(schedule, slot, manual=False)
        second = other.schedules.firer.fire(schedule, slot, manual=False)
        assert (second.id, second.run_id, second.trigger_id) == (
            first.id,
            first.run_id,
            first.trigger_id,
        )
        assert table_count(one, "runs") == 1
        assert len(history(one, schedule)) == 1


SCHEDULER_TREE = small_tree(
    "Schedule Ticks",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Plan"}]},
        "Plan": {
            "handler": "system_schedule_create_v1",
            "parameters": {
                "name": "ticks for {{ source.id }}",
                "source_name": "Tests",
                "source_group": "Semantics",
                "tree_name": "Tick",
                "source_id": "{{ source.id }}",
                "inputs": "<results><result name='Colour'>{{ inputs['Colour'] }}</result>"
                "</results>",
                "kind": "{{ inputs['Kind'] }}",
                "every": "{{ inputs['Every'] }}",
                "unit": "seconds",
            },
        },
    },
)
SCHEDULER_KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Schedule Ticks"}


def test_a_tree_creates_a_schedule_that_fires(eng: Engine) -> None:
    eng.load_tree(SCHEDULER_TREE)
    results = (
        "<results><result name='Colour'>green</result><result name='Kind'>interval</result>"
        "<result name='Every'>1</result></results>"
    )
    trigger = eng.create_start(**SCHEDULER_KEY, source_id="plan-1", results=results)
    eng.run_until_idle()
    run = eng.get_run(trigger.run_id)
    assert run.status == RunStatus.COMPLETED
    plan = next(task for task in run.tasks if task.name == "Plan")
    [schedule] = eng.schedules.list()
    assert plan.results["schedule_id"] == str(schedule.id)
    assert schedule.name == "ticks for plan-1"
    assert schedule.created_by == f"run {run.id}"
    eng.start(workers=1)
    wait_for(lambda: len(started(eng, schedule)) >= 1)
    eng.stop()
    fired = eng.get_run(started(eng, schedule)[0].run_id)
    assert (fired.source_id, fired.inputs) == ("plan-1", {"Colour": "green"})


def test_the_node_is_idempotent_and_a_refused_schedule_fails_the_node(eng: Engine) -> None:
    gateway = eng.runner.gateway  # what the node's handler is given
    fields = {"name": "n", **TREE, "when": EVERY_SECOND}
    first = gateway.create_schedule(creation_key="task:abc", **fields)
    again = gateway.create_schedule(creation_key="task:abc", **fields)
    assert again.schedule_id == first.schedule_id
    assert table_count(eng, "schedules") == 1

    eng.load_tree(SCHEDULER_TREE)
    results = (
        "<results><result name='Colour'>red</result><result name='Kind'>interval</result>"
        "<result name='Every'>0</result></results>"
    )
    trigger = eng.create_start(**SCHEDULER_KEY, results=results)
    eng.run_until_idle()
    run = eng.get_run(trigger.run_id)
    [error] = run.errors
    assert error.type == "Handler Error"
    assert "when.every" in error.summary
    assert table_count(eng, "schedules") == 1


def test_a_deleted_schedules_id_is_not_given_again(eng: Engine) -> None:
    first = create(eng)
    second = create(eng)
    eng.schedules.delete(second.id)
    third = create(eng)
    assert third.id not in (first.id, second.id)


EVERY_KIND = [
    {"kind": "once", "at": "2099-01-01T09:00"},
    {"kind": "interval", "every": 2, "unit": "months"},
    {"kind": "interval", "every": 3, "unit": "hours"},
    {"kind": "weekdays", "time": "08:30"},
    {"kind": "weekly", "days": ["tue", "sat"], "time": "17:00"},
    {"kind": "monthly", "day": "last", "time": "23:00"},
    {"kind": "cron", "cron": "0 9 * * 1-5"},
]


def test_every_kind_survives_the_job_store_across_a_restart(database_url: str) -> None:
    with engine_on(database_url) as engine:
        made = [
            create(engine, name=when["kind"], when=when, timezone="Europe/Dublin")
            for when in EVERY_KIND
        ]
        engine.start(workers=1)
        wait_for(lambda: engine.schedules.scheduler.leading)
        wait_for(lambda: table_count(engine, "schedule_jobs") == len(EVERY_KIND))
    with engine_on(database_url) as again:
        again.start(workers=1)
        wait_for(lambda: again.schedules.scheduler.leading)
        aps = again.schedules.scheduler._aps
        assert aps is not None
        jobs = {job.id: job for job in aps.get_jobs()}  # unpickled from the table
        assert set(jobs) == {schedule.job_id for schedule in made}
        for schedule in made:
            job = jobs[schedule.job_id]
            assert job.args == (schedule.id, schedule.revision)
            assert job.next_run_time.timestamp() == schedule.next_fire_time


def test_concurrent_creations_with_one_key_make_one_schedule(eng: Engine) -> None:
    fields = {"name": "n", **TREE, "when": EVERY_SECOND, "creation_key": "task:race"}
    outcomes = race(4, lambda: eng.schedules.create(**fields))
    assert all(isinstance(outcome, Schedule) for outcome in outcomes), outcomes
    assert len({outcome.id for outcome in outcomes}) == 1  # type: ignore[union-attr]
    assert table_count(eng, "schedules") == 1


def test_a_job_store_that_cannot_be_read_answers_soon_instead_of_ending_the_loop(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler's loop does not catch a failed look-up of the next firing time; the job
    store turns one (here: a database file that cannot be opened) into "ask again soon"."""
    unreachable = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")
    store = JobStore(engine=unreachable, tablename=JOB_TABLE, logger=logging.getLogger("t"))
    caplog.set_level(logging.WARNING, logger="t")
    before = datetime.now(UTC)
    soon = store.get_next_run_time()
    assert soon is not None
    assert before + timedelta(seconds=LOOKUP_RETRY_SECONDS - 1) <= soon
    assert soon <= datetime.now(UTC) + timedelta(seconds=LOOKUP_RETRY_SECONDS)
    assert [r.getMessage() for r in caplog.records] == [
        "the scheduler could not read its next firing time (OperationalError); asking again"
        f" in {LOOKUP_RETRY_SECONDS:g}s"
    ]
    unreachable.dispose()
