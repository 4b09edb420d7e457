"""Scheduled tasks that name a process, on SQLite and PostgreSQL: each firing creates an instance
of it with the task's fields (over a named instance's), exactly once per slot, and what a task
may name is checked before anything is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine import BadRequest, Engine, FieldNotSettable, FieldValue, Instance, RunStatus
from engine.records import Firing, Schedule
from engine.schedule.firing import slot_text

from .conftest import TREES
from .support import race, small_tree, wait_for

PROCESS = "new-training-process"
TICK = small_tree(
    "Tick",
    {"Start": {"handler": "system_start_v1"}},
)
OTHER = small_tree("Other", {"Start": {"handler": "system_start_v1"}}) | {
    "process": "other-process",
    "fields": {"Note": {"default": ""}},
}
TREE = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Tick"}
EVERY_SECOND = {"kind": "interval", "every": 1, "unit": "seconds"}
NIGHTLY = {"kind": "cron", "cron": "0 2 * * *"}


def engine_on(url: str) -> Engine:
    engine = Engine(url, trees=TREES, schedule_poll_seconds=0.2, poll_interval=0.05)
    engine.load_tree(TICK)
    engine.load_tree(OTHER)
    return engine


@pytest.fixture
def eng(database_url: str) -> Iterator[Engine]:
    with engine_on(database_url) as engine:
        yield engine


def create(engine: Engine, **fields: Any) -> Schedule:
    given: dict[str, Any] = {
        "name": "training",
        "process": PROCESS,
        "fields": {"Reason": "Yearly refresher", "Days": 2},
        "when": NIGHTLY,
        "created_by": "alice",
    }
    return engine.schedules.create(**(given | fields))


def count(engine: Engine, table: str) -> int:
    with engine.database.read() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def values_of(instance: Instance) -> dict[str, object]:
    return {field.name: field.value for field in instance.fields}


def test_a_firing_creates_an_instance_with_the_tasks_fields(eng: Engine) -> None:
    schedule = create(eng, when=EVERY_SECOND)
    assert (schedule.process, schedule.fields, schedule.instance) == (
        PROCESS,
        {"Reason": "Yearly refresher", "Days": 2},
        None,
    )
    assert (schedule.source_name, schedule.tree_name) == ("", "")
    eng.start(workers=1)
    try:
        wait_for(lambda: any(f.outcome == "Started" for f in eng.schedules.history(schedule.id)))
    finally:
        eng.stop()
    firing = next(f for f in eng.schedules.history(schedule.id) if f.outcome == "Started")
    assert firing.instance is not None and firing.instance.startswith(f"{PROCESS}-")
    instance = eng.get_instance(firing.instance)
    assert (instance.version, instance.created_by, instance.run_id) == (1, "alice", firing.run_id)
    assert values_of(instance) == {
        "Reason": "Yearly refresher",
        "Course": "To be chosen",
        "Days": 2,
        "Budget Code": "HR-TRAINING",
    }
    run = eng.get_run(firing.run_id)
    assert run.values == values_of(instance)
    assert run.source_id == instance.name
    with eng.database.read() as connection:
        source_data, key = connection.execute(
            sa.text(
                "SELECT r.source_data, t.idempotency_key FROM runs r"
                " JOIN triggers t ON t.run_id = r.id WHERE t.id = :id"
            ),
            {"id": firing.trigger_id},
        ).one()
    data = source_data if isinstance(source_data, dict) else json.loads(source_data)
    assert (data["schedule_id"], data["instance"], data["process"]) == (
        schedule.id,
        instance.name,
        PROCESS,
    )
    assert key == f"schedule:{schedule.id}:{slot_text(firing.fire_time)}"


def test_run_now_creates_an_instance_owned_by_the_creators_user_id(eng: Engine) -> None:
    schedule = create(eng, creator_id="user-ada", enabled=False)
    firing = eng.schedules.run_now(schedule.id)
    assert (firing.outcome, firing.manual, firing.instance) == ("Started", True, f"{PROCESS}-1")
    instance = eng.get_instance(f"{PROCESS}-1", created_by="user-ada")
    assert instance.field("Reason") == FieldValue("Reason", "Yearly refresher", "Yearly refresher")
    eng.run_until_idle()
    assert eng.get_instance(instance.name).status is RunStatus.STARTED
    assert [f.instance for f in eng.schedules.history(schedule.id)] == [instance.name]


def test_the_instance_option_copies_its_current_fields_under_the_tasks(eng: Engine) -> None:
    source = eng.create_instance(PROCESS, {"Reason": "Onboarding", "Days": 3})
    schedule = create(eng, fields={"Course": "Go"}, instance=source.name)
    # Changed after the task was made: each firing copies the fields as they are then.
    eng.patch_instance_fields(source.name, [FieldValue("Days", 4, "four days")])
    firing = eng.schedules.run_now(schedule.id)
    assert firing.instance is not None
    copied = eng.get_instance(firing.instance)
    assert copied.name != source.name and copied.version == 1
    assert copied.fields == (
        FieldValue("Reason", "Onboarding", "Onboarding"),
        FieldValue("Course", "Go", "Go"),
        FieldValue("Days", 4, "four days"),
        FieldValue("Budget Code", "HR-TRAINING", "HR-TRAINING"),
    )
    assert eng.get_instance(source.name).version == 2, "the copied instance is not changed"


@pytest.mark.parametrize(
    ("fields", "error", "named"),
    [
        ({"process": "no-such-process"}, BadRequest, "no process is named 'no-such-process'"),
        ({"fields": {"Colour": "red"}}, BadRequest, "has no field 'Colour'"),
        ({"fields": {"Budget Code": "X"}}, FieldNotSettable, "may not set 'Budget Code'"),
        ({"fields": {"Reason": ["a"]}}, BadRequest, "a value is a scalar, not list"),
        ({"instance": "no-such-instance"}, BadRequest, "no instance is named 'no-such-instance'"),
        ({"instance": "other-process-1"}, BadRequest, "is an instance of 'other-process'"),
        (TREE, BadRequest, "name a process or a tree (source_name, source_group, tree_name)"),
        ({"process": None}, BadRequest, "name a process, or a tree by source_name"),
        ({"process": None, **TREE}, BadRequest, "only a schedule that names a process"),
        ({"values": {"Colour": "red"}}, BadRequest, "gives its inputs as fields"),
        ({"source_id": "x"}, BadRequest, "gives its inputs as fields"),
        ({"fields": ["Reason"]}, BadRequest, "expected an object of name: value"),
        ({"created_by": "a" * 50}, BadRequest, "at most 36 characters"),
    ],
)
def test_a_refused_task_names_what_was_wrong_and_stores_nothing(
    eng: Engine, fields: dict[str, Any], error: type[Exception], named: str
) -> None:
    eng.create_instance("other-process")
    with pytest.raises(error) as refused:
        create(eng, **fields)
    assert named in str(refused.value)
    assert count(eng, "schedules") == 0
    assert count(eng, "instances") == 1


def test_changes_are_checked_and_a_task_can_switch_between_tree_and_process(eng: Engine) -> None:
    schedule = create(eng)
    with pytest.raises(BadRequest, match="has no field 'Colour'"):
        eng.schedules.update(schedule.id, fields={"Colour": "red"})
    with pytest.raises(BadRequest, match="not both"):
        eng.schedules.update(schedule.id, tree_name="Tick")
    assert eng.schedules.get(schedule.id).revision == schedule.revision

    as_tree = eng.schedules.update(schedule.id, process=None, **TREE)
    assert (as_tree.process, as_tree.fields, as_tree.tree_name) == (None, None, "Tick")
    tree_run = eng.schedules.run_now(schedule.id)
    assert tree_run.instance is None and tree_run.run_id is not None
    assert count(eng, "instances") == 0

    as_process = eng.schedules.update(schedule.id, process=PROCESS, fields={"Days": 5})
    assert (as_process.process, as_process.tree_name, as_process.source_name) == (
        PROCESS,
        "",
        "",
    )
    firing = eng.schedules.run_now(schedule.id)
    assert firing.instance is not None
    assert eng.get_instance(firing.instance).field("Days").value == 5


def test_a_field_the_process_no_longer_declares_fails_the_firing(eng: Engine) -> None:
    schedule = create(eng)
    definition = (TREES / "new-training-process.yaml").read_text(encoding="utf-8")
    without_reason = definition.replace(
        "  Reason:\n    label: Why the training is needed\n", ""
    ).replace("because {{ values['Reason'] }}", "")
    assert without_reason != definition
    eng.deploy_process(without_reason)
    failed = eng.schedules.firer.fire(schedule, float(int(time.time())), manual=False)
    assert (failed.outcome, failed.instance, failed.run_id) == ("Failed", None, None)
    assert "has no field 'Reason'" in failed.reason
    assert count(eng, "instances") == 0


def test_one_slot_fired_by_two_engines_creates_one_instance(database_url: str) -> None:
    with engine_on(database_url) as one, engine_on(database_url) as other:
        schedule = create(one)
        slot = float(int(time.time()))
        engines = iter([one, other, one, other])

        def fire() -> Firing:
            return next(engines).schedules.firer.fire(schedule, slot, manual=False)

        outcomes = race(4, fire)
        assert all(isinstance(o, Firing) for o in outcomes), outcomes
        firings = [o for o in outcomes if isinstance(o, Firing)]
        assert {(f.instance, f.run_id, f.trigger_id) for f in firings} == {
            (f"{PROCESS}-1", firings[0].run_id, firings[0].trigger_id)
        }
        assert (count(one, "instances"), count(one, "runs")) == (1, 1)
        assert len(one.schedules.history(schedule.id)) == 1
        # The losers' numbering was rolled back with them: the next instance is the second.
        assert one.create_instance(PROCESS).name == f"{PROCESS}-2"


def test_an_instance_created_twice_with_one_key_is_created_once(eng: Engine) -> None:
    def create_keyed() -> Instance:
        return eng.create_instance(PROCESS, {"Reason": "r"}, idempotency_key="k-1")

    outcomes = race(3, create_keyed)
    assert all(isinstance(o, Instance) for o in outcomes), outcomes
    assert {o.name for o in outcomes if isinstance(o, Instance)} == {f"{PROCESS}-1"}
    again = eng.create_instance(PROCESS, {"Reason": "changed"}, idempotency_key="k-1")
    assert (again.name, again.field("Reason").value) == (f"{PROCESS}-1", "r")
    assert (count(eng, "instances"), count(eng, "runs")) == (1, 1)
    eng.create_start(**TREE, idempotency_key="k-2")
    with pytest.raises(BadRequest, match="which is not an instance"):
        eng.create_instance(PROCESS, idempotency_key="k-2")


PLANNER = small_tree(
    "Plan Training",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Plan"}]},
        "Plan": {
            "handler": "system_schedule_create_v1",
            "parameters": {
                "name": "training for {{ source.id }}",
                "process": PROCESS,
                "fields": '{"Reason": "{{ source.id }}", "Days": 3}',
                "kind": "cron",
                "cron": "0 2 * * *",
            },
        },
    },
)


def test_a_tree_creates_a_process_task(eng: Engine) -> None:
    eng.load_tree(PLANNER)
    trigger = eng.create_start(
        source_name="Tests", source_group="Semantics", tree_name="Plan Training", source_id="ops"
    )
    eng.run_until_idle()
    assert eng.get_run(trigger.run_id).status is RunStatus.COMPLETED
    [schedule] = eng.schedules.list()
    assert (schedule.process, schedule.fields) == (PROCESS, {"Reason": "ops", "Days": 3})
    firing = eng.schedules.run_now(schedule.id)
    assert firing.instance is not None
    assert values_of(eng.get_instance(firing.instance))["Reason"] == "ops"


def test_a_tree_giving_fields_the_store_cannot_keep_is_refused_by_name(eng: Engine) -> None:
    eng.load_tree(PLANNER)
    trigger = eng.create_start(
        source_name="Tests", source_group="Semantics", tree_name="Plan Training",
        source_id="\\ud800",  # six characters: rendered into the JSON, a lone surrogate
    )  # fmt: skip
    eng.run_until_idle()

    [error] = eng.get_run(trigger.run_id).errors
    assert "Invalid fields: the text at $.Reason holds a lone surrogate '\\ud800'" in error.summary
    assert eng.schedules.list() == []
