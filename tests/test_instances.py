"""The instance API of the engine, on SQLite and PostgreSQL: creating instances of a process,
reading their fields, replacing and patching them with optimistic concurrency, and who may."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine import (
    BadRequest,
    Engine,
    FieldNotSettable,
    FieldValue,
    Instance,
    InstanceNotFound,
    ProcessNotFound,
    RunStatus,
    TriggerStatus,
    UnknownField,
    VersionConflict,
)

from .conftest import TREES
from .support import counts, race

PROCESS = "new-training-process"
ADA, BOB = "user-ada", "user-bob"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with Engine(database_url, trees=TREES) as eng:
        yield eng


def values_of(instance: Instance) -> dict[str, object]:
    return {field.name: field.value for field in instance.fields}


def run_values(engine: Engine, instance: Instance) -> dict[str, object]:
    return dict(engine.get_run(instance.run_id).values)


def output(engine: Engine, instance: Instance, node: str) -> str:
    [task] = [t for t in engine.get_run(instance.run_id).tasks if t.name == node]
    return str(task.results["output"])


def test_creating_an_instance_accepts_a_run_with_its_fields_as_values(engine: Engine) -> None:
    first = engine.create_instance(PROCESS, {"Reason": "New employee"}, created_by=ADA)
    second = engine.create_instance(PROCESS, created_by=BOB)
    assert (first.name, second.name) == (f"{PROCESS}-1", f"{PROCESS}-2")
    assert (first.version, first.status, first.created_by) == (1, RunStatus.STAGED, ADA)
    assert first.fields == (
        FieldValue("Reason", "New employee", "New employee"),
        FieldValue("Course", "To be chosen", "To be chosen"),
        FieldValue("Days", 1, "1"),
        FieldValue("Budget Code", "HR-TRAINING", "HR-TRAINING"),
    )
    [trigger] = [t for t in engine_triggers(engine) if t["run_id"] == first.run_id]
    assert (trigger["action"], trigger["status"]) == ("Root", TriggerStatus.NEW.value)
    run = engine.get_run(first.run_id)
    assert (run.source_id, run.tree_name, run.status) == (
        first.name,
        "New Training Process",
        RunStatus.STAGED,
    )
    engine.run_until_idle()
    assert output(engine, first, "Ask Manager").startswith(
        f"{PROCESS}-1: To be chosen for 1 day(s), because New employee; token "
    )
    assert engine.get_instance(first.name).status is RunStatus.STARTED
    assert run_values(engine, second)["Reason"] is None


def engine_triggers(engine: Engine) -> list[sa.RowMapping]:
    with engine.database.read() as connection:
        return list(connection.execute(sa.text("SELECT * FROM triggers")).mappings())


def test_texts_are_kept_beside_values(engine: Engine) -> None:
    given = [FieldValue("Course", "py-101", "Python for beginners"), FieldValue("Days", 2.5)]
    instance = engine.create_instance(PROCESS, given, trigger_field="Course")
    assert instance.field("Course") == FieldValue("Course", "py-101", "Python for beginners")
    assert instance.field("Days") == FieldValue("Days", 2.5, "2.5")
    assert run_values(engine, instance)["Course"] == "py-101"
    assert engine.get_run(instance.run_id).source_id == instance.name
    with engine.database.read() as connection:
        data = connection.execute(
            sa.text("SELECT source_data FROM runs WHERE id = :id"), {"id": instance.run_id}
        ).scalar_one()
    if isinstance(data, str):  # SQLite's JSON comes back as text through a raw query
        data = json.loads(data)
    assert data == {"instance": instance.name, "process": PROCESS, "trigger_field": "Course"}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda e: e.create_instance("no-such-process"),
            ProcessNotFound,
            "Unable to locate a process named 'no-such-process'",
        ),
        (
            lambda e: e.create_instance(PROCESS, {"Reason": "x", "Colour": 1, "Size": 2}),
            UnknownField,
            f"the process '{PROCESS}' has no field 'Colour', 'Size' "
            "(its fields: 'Reason', 'Course', 'Days', 'Budget Code')",
        ),
        (
            lambda e: e.create_instance(PROCESS, {"Budget Code": "MINE"}),
            FieldNotSettable,
            f"callers may not set 'Budget Code' of the process '{PROCESS}'",
        ),
        (
            lambda e: e.create_instance(PROCESS, trigger_field="Submit"),
            UnknownField,
            "has no field 'Submit'",
        ),
        (
            lambda e: e.create_instance(PROCESS, instance_id="other-process"),
            BadRequest,
            "Invalid instanceID: new instances of",
        ),
        (
            lambda e: e.create_instance(PROCESS, [FieldValue("Days", 1), FieldValue("Days", 2)]),
            BadRequest,
            "the field 'Days' is given twice",
        ),
        (
            lambda e: e.create_instance(PROCESS, {"Days": float("nan")}),
            BadRequest,
            "a number must be finite",
        ),
        (
            lambda e: e.create_instance(PROCESS, {"Days": [1]}),
            BadRequest,
            "a value is a scalar, not list",
        ),
        (
            lambda e: e.create_instance(PROCESS, {"Reason": "a\x00b"}),
            BadRequest,
            "contains a NUL character",
        ),
    ],
    ids=[
        "unknown process",
        "unknown fields",
        "field not settable",
        "unknown trigger field",
        "other instance id",
        "field twice",
        "not finite",
        "not a scalar",
        "NUL",
    ],
)
def test_a_refused_create_names_what_was_wrong_and_writes_nothing(
    engine: Engine, call: object, error: type[Exception], message: str
) -> None:
    before = counts(engine)
    with pytest.raises(error) as caught:
        call(engine)  # type: ignore[operator]
    assert message in str(caught.value)
    assert counts(engine) == before
    assert engine.create_instance(PROCESS).name == f"{PROCESS}-1"  # no number was used up


def test_reading_fields_by_name(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Reason": "r"})
    assert engine.instance_fields(instance.name, ["Days", "Reason"]) == [
        FieldValue("Days", 1, "1"),
        FieldValue("Reason", "r", "r"),
    ]
    assert engine.instance_fields(instance.name) == list(instance.fields)
    with pytest.raises(UnknownField, match="has no field 'Colour'"):
        engine.instance_fields(instance.name, ["Days", "Colour"])
    with pytest.raises(InstanceNotFound, match=f"an instance named '{PROCESS}-9'"):
        engine.get_instance(f"{PROCESS}-9")


def test_replace_sets_every_settable_field_and_adds_one_to_the_version(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Reason": "r", "Days": 3})
    replaced = engine.replace_instance_fields(
        instance.name, {"Course": "Python"}, version=instance.version
    )
    assert replaced.version == 2
    expected = {"Reason": None, "Course": "Python", "Days": 1, "Budget Code": "HR-TRAINING"}
    assert values_of(replaced) == expected
    assert values_of(engine.get_instance(instance.name)) == expected
    assert run_values(engine, instance) == expected


def test_a_stale_replace_is_a_conflict_and_writes_nothing(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Reason": "r"})
    engine.patch_instance_fields(instance.name, {"Days": 2})
    with pytest.raises(VersionConflict) as caught:
        engine.replace_instance_fields(instance.name, {"Reason": "late"}, version=1)
    assert str(caught.value) == (
        f"the instance '{PROCESS}-1' is at version 2, but the change was based on version 1"
    )
    current = engine.get_instance(instance.name)
    assert (current.version, current.field("Reason").value, current.field("Days").value) == (
        2,
        "r",
        2,
    )
    assert run_values(engine, instance)["Reason"] == "r"


def test_patch_changes_only_the_fields_given(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Reason": "r", "Course": "Go"})
    patched = engine.patch_instance_fields(instance.name, [FieldValue("Days", 4, "four days")])
    assert patched.version == 2
    assert values_of(patched) == {
        "Reason": "r",
        "Course": "Go",
        "Days": 4,
        "Budget Code": "HR-TRAINING",
    }
    assert patched.field("Days").text == "four days"
    with pytest.raises(VersionConflict):
        engine.patch_instance_fields(instance.name, {"Days": 5}, version=1)
    assert engine.patch_instance_fields(instance.name, {"Days": 5}, version=2).version == 3


def test_writes_refuse_unknown_and_unsettable_fields_by_name(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS)
    with pytest.raises(UnknownField, match="no field 'Colour'"):
        engine.patch_instance_fields(instance.name, {"Colour": "red", "Days": 2})
    with pytest.raises(UnknownField) as caught:
        engine.patch_instance_fields(instance.name, {"Budget Code": "X", "Colour": "red"})
    assert str(caught.value) == (
        f"Invalid fields: the process '{PROCESS}' has no field 'Colour' (its fields: 'Reason', "
        "'Course', 'Days', 'Budget Code'); callers may not set 'Budget Code'"
    )
    with pytest.raises(FieldNotSettable, match="may not set 'Budget Code'"):
        engine.replace_instance_fields(instance.name, {"Budget Code": "X"}, version=1)
    assert engine.get_instance(instance.name).version == 1


def test_later_steps_see_the_fields_as_they_are_then(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Course": "Go"})
    engine.run_until_idle()
    engine.patch_instance_fields(instance.name, {"Course": "Rust"})
    [approve] = [t for t in engine.get_run(instance.run_id).tasks if t.name == "Approve"]
    assert approve.token is not None
    decision = '<results><result name="Decision">Approved</result></results>'
    engine.create_deferred(token=approve.token, action="Complete", results=decision)
    engine.run_until_idle()
    assert output(engine, instance, "Book Course") == f"Booked Rust on HR-TRAINING for {PROCESS}-1"
    assert engine.get_instance(instance.name).status is RunStatus.COMPLETED
    # An instance is also a record: its fields stay writable after the run completes.
    assert engine.patch_instance_fields(instance.name, {"Days": 9}).version == 3


def test_a_user_finds_only_the_instances_it_created(engine: Engine) -> None:
    mine = engine.create_instance(PROCESS, created_by=ADA)
    theirs = engine.create_instance(PROCESS, created_by=BOB)
    assert engine.get_instance(mine.name, created_by=ADA).created_by == ADA
    for call in (
        lambda: engine.get_instance(theirs.name, created_by=ADA),
        lambda: engine.instance_fields(theirs.name, created_by=ADA),
        lambda: engine.patch_instance_fields(theirs.name, {"Days": 2}, created_by=ADA),
        lambda: engine.replace_instance_fields(theirs.name, {}, version=1, created_by=ADA),
    ):
        with pytest.raises(InstanceNotFound, match=f"an instance named '{theirs.name}'"):
            call()
    assert engine.get_instance(theirs.name).version == 1


def test_of_concurrent_replaces_based_on_one_version_exactly_one_wins(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS)
    contenders = 8
    numbers = iter(range(contenders))

    def replace() -> Instance:
        return engine.replace_instance_fields(
            instance.name, {"Reason": f"writer {next(numbers)}"}, version=1
        )

    outcomes = race(contenders, replace)
    won = [o for o in outcomes if isinstance(o, Instance)]
    lost = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert (len(won), len(lost)) == (1, contenders - 1), outcomes
    current = engine.get_instance(instance.name)
    assert current.version == 2
    assert current.field("Reason").value == won[0].field("Reason").value
    assert run_values(engine, instance)["Reason"] == won[0].field("Reason").value


def test_concurrent_unversioned_patches_all_apply(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS)
    fields = iter([("Reason", "r"), ("Course", "c"), ("Days", 7)])

    def patch() -> Instance:
        name, value = next(fields)
        return engine.patch_instance_fields(instance.name, {name: value})

    outcomes = race(3, patch)
    assert all(isinstance(o, Instance) for o in outcomes), outcomes
    current = engine.get_instance(instance.name)
    assert current.version == 4
    assert values_of(current) == {
        "Reason": "r",
        "Course": "c",
        "Days": 7,
        "Budget Code": "HR-TRAINING",
    }


def test_the_instance_and_process_calls_work_on_an_in_memory_engine() -> None:
    """One connection serves every thread there: no call may hold it while asking again."""
    with Engine() as engine:
        engine.load_tree((TREES / "new-training-process.yaml").read_text(encoding="utf-8"))
        instance = engine.create_instance(PROCESS, {"Reason": "r"})
        engine.run_until_idle()
        assert engine.patch_instance_fields(instance.name, {"Days": 2}).version == 2
        assert engine.replace_instance_fields(instance.name, {}, version=2).version == 3
        assert [v.version for v in engine.get_process(PROCESS).versions] == [1]
        assert [p.name for p in engine.list_processes()] == [PROCESS]


def test_a_field_write_keeps_run_values_that_are_not_fields(engine: Engine) -> None:
    instance = engine.create_instance(PROCESS, {"Reason": "r"})
    runs = sa.table("runs", sa.column("id"), sa.column("values", sa.JSON))
    with engine.database.write() as connection:  # as something other than a field write would
        values = {**run_values(engine, instance), "Approver": "eve"}
        connection.execute(runs.update().where(runs.c.id == instance.run_id).values(values=values))
    engine.patch_instance_fields(instance.name, {"Days": 2})
    engine.replace_instance_fields(instance.name, {"Course": "Go"}, version=2)
    assert run_values(engine, instance) == {
        "Reason": None,
        "Course": "Go",
        "Days": 1,
        "Budget Code": "HR-TRAINING",
        "Approver": "eve",
    }
